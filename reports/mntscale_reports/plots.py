"""Matplotlib figures for the report; every figure is written as PNG and SVG.

Each plot kind makes one figure per scenario. A kind with no data anywhere
yields a single ``Plot`` with ``skipped`` set, so the HTML can say why it is
missing instead of showing an empty axis.
"""

import os
import re
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, NullFormatter, PercentFormatter  # noqa: E402

from . import sweeps as sweeps_mod  # noqa: E402
from .load import is_number  # noqa: E402

FORMATS = ("png", "svg")
FACET_COLUMNS = 3
PERCENTILES = (("p50", "-"), ("p99", "--"), ("p999", ":"))
ATTRIBUTION_BUCKETS = ("mount_lock", "mount_hash", "namespace_sem", "rcu_wait", "ns_copy_teardown",
                       "overlay", "path_walk", "other_kernel", "user")


@dataclass
class Plot:
    kind: str
    title: str
    files: list = field(default_factory=list)  # file names relative to the output directory
    skipped: str = None

    @property
    def image(self):
        return self.files[0] if self.files else None


@dataclass
class Line:
    """One drawn line: a legend label and its data."""

    label: str
    xs: list
    ys: list
    errs: list = None
    style: str = "-"
    color: str = None


def slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# --- metrics that are not plain top-level keys ----------------------------------------------

def latency_of(percentile):
    return lambda rep: (rep.get("latency_ns") or {}).get(percentile)


def sys_share(rep):
    """Kernel share of worker CPU time: the mount machinery shows up as sys time."""
    sys_t, user_t = rep.get("sys_time_s"), rep.get("user_time_s")
    if not (is_number(sys_t) and is_number(user_t)) or sys_t + user_t <= 0:
        return None
    return sys_t / (sys_t + user_t)


# --- drawing -------------------------------------------------------------------------------

def _facet_axes(n):
    cols = min(n, FACET_COLUMNS)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 4.2 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _duration_ns(value, _pos=None):
    """Tick label for a duration given in ns: 800 ns, 1.5 µs, 12 ms."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value:g} ns"


def _log_x(ax):
    """Container and worker counts span decades; plain numbers read better than 10^k."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _save(fig, outdir, stem):
    files = []
    for fmt in FORMATS:
        name = f"{stem}.{fmt}"
        fig.savefig(os.path.join(outdir, name), dpi=110, bbox_inches="tight")
        files.append(name)
    plt.close(fig)
    return files


def _draw_facets(facets, xlabel, ylabel, yformatter, ylog=False):
    """facets: {title: [Line]} -> figure with one axis per facet."""
    fig, axes = _facet_axes(len(facets))
    for ax, (title, lines) in zip(axes, facets.items()):
        for line in lines:
            ax.errorbar(line.xs, line.ys, yerr=line.errs, fmt="o" + line.style, color=line.color,
                        label=line.label, capsize=3, markersize=4, linewidth=1.4)
        _log_x(ax)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylog:  # percentiles span decades; label 1-2-5 steps so a reader finds values
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(yformatter)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return fig


def _facet_lines(sweeps, facet_of, primary, lines_of):
    """Group sweeps into facets and turn each into Lines labelled by what differs in its facet."""
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    grouped = {}
    for s in sweeps:
        grouped.setdefault(facet_of(s), []).append(s)
    facets = {}
    for title, members in grouped.items():
        labels = sweeps_mod.labels(members, primary)
        facets[title] = [line for i, (s, label) in enumerate(zip(members, labels))
                         for line in lines_of(s, label, colors[i % len(colors)])]
    return {t: [ln for ln in lines if ln.xs] for t, lines in facets.items() if any(ln.xs for ln in lines)}


def _metric_line(key):
    def lines(sweep, label, color):
        xs, ys, errs = sweep.series(key)
        return [Line(label, xs, ys, errs, color=color)]
    return lines


def _latency_lines(sweep, label, color):
    return [Line(f"{label} {p}", *sweep.series(latency_of(p))[:2], style=style, color=color)
            for p, style in PERCENTILES]


def _by_scenario(sweeps):
    out = {}
    for s in sweeps:
        out.setdefault(s.group.scenario, []).append(s)
    return out


@dataclass
class LineSpec:
    """One kind of line plot: which axis, how sweeps are split into facets and lines, how to label."""

    kind: str  # section key in the HTML
    stem: str  # file name prefix
    title: str
    x: str  # params key on the x axis
    facet: object  # Sweep -> facet title
    primary: str  # Sweep.fields() key that names a line
    lines: object  # (Sweep, label, color) -> [Line]
    ylabel: str
    yformat: object
    empty: str  # why the plot is skipped when no scenario has data
    ylog: bool = False


def line_plots(points, outdir, spec):
    """One figure per scenario for a LineSpec; a skipped Plot when nothing to draw."""
    plots = []
    for scenario, sweeps in _by_scenario(sweeps_mod.build(points, spec.x)).items():
        title = f"{spec.title} — {scenario}"
        if all(len(s.xs) < 2 for s in sweeps):
            plots.append(Plot(spec.kind, title, skipped=f"no sweep along {spec.x} in this scenario"))
            continue
        facets = _facet_lines(sweeps, spec.facet, spec.primary, spec.lines)
        if not facets:
            continue
        fig = _draw_facets(facets, spec.x, spec.ylabel, spec.yformat, spec.ylog)
        fig.suptitle(title, fontsize=12)
        plots.append(Plot(spec.kind, title, _save(fig, outdir, f"{spec.stem}-{slug(scenario)}")))
    return plots or [Plot(spec.kind, spec.title, skipped=spec.empty)]


def _kernel_on_system(s):
    return f"{s.group.kernel} on {s.group.system}"


_RATE = EngFormatter(unit="ops/s")
LINE_SPECS = [
    LineSpec("headline-kernels", "throughput-by-kernel", "Throughput vs containers, by kernel", "containers",
             facet=lambda s: s.group.system, primary="kernel", lines=_metric_line("items_per_second"),
             ylabel="throughput", yformat=_RATE, empty="no points with params.containers and items_per_second"),
    LineSpec("headline-machines", "throughput-by-machine", "Throughput vs containers, by machine", "containers",
             facet=lambda s: s.group.kernel, primary="system", lines=_metric_line("items_per_second"),
             ylabel="throughput", yformat=_RATE, empty="no points with params.containers and items_per_second"),
    LineSpec("per-worker", "per-worker", "Per-worker throughput vs workers, by placement", "workers",
             facet=_kernel_on_system, primary="placement", lines=_metric_line("ops_per_sec_per_worker"),
             ylabel="throughput per worker", yformat=_RATE,
             empty="no points with params.workers and ops_per_sec_per_worker"),
    LineSpec("latency", "latency", "Latency percentiles vs containers", "containers",
             facet=_kernel_on_system, primary="kernel", lines=_latency_lines, ylabel="latency per operation",
             yformat=FuncFormatter(_duration_ns), ylog=True, empty="no points carry latency_ns"),
    LineSpec("time-split", "time-split", "Kernel share of worker CPU time vs containers", "containers",
             facet=lambda s: "sys / (sys + user)", primary="kernel", lines=_metric_line(sys_share),
             ylabel="kernel time share", yformat=PercentFormatter(1.0),
             empty="no points carry sys_time_s and user_time_s"),
]


# --- attribution ---------------------------------------------------------------------------

def _bucket_means(points):
    """Mean share per attribution bucket over all repetitions at one x."""
    reps = [a.get("buckets") or {} for p in points for a in p.with_key("attribution")]
    if not reps:
        return None
    names = list(ATTRIBUTION_BUCKETS) + sorted({k for b in reps for k in b} - set(ATTRIBUTION_BUCKETS))
    return {k: sum(float(b.get(k, 0.0)) for b in reps) / len(reps) for k in names}


def _draw_stacked(ax, xs, shares):
    names = list(dict.fromkeys(k for s in shares for k in s))
    bottoms = [0.0] * len(xs)
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        heights = [s.get(name, 0.0) for s in shares]
        ax.bar([str(x) for x in xs], heights, bottom=bottoms, label=name, color=cmap(i % 10))
        bottoms = [b + h for b, h in zip(bottoms, heights)]


def attribution_plots(points, outdir):
    """Stacked bars of kernel-time attribution buckets, one bar per point, a facet per sweep."""
    plots = []
    for scenario, sweeps in _by_scenario(sweeps_mod.build(points, "containers")).items():
        bars = []
        for s, label in zip(sweeps, sweeps_mod.labels(sweeps, "kernel")):
            rows = [(x, _bucket_means(pts)) for x, pts in zip(s.xs, s.points)]
            rows = [(x, b) for x, b in rows if b]
            if rows:
                bars.append((label, rows))
        if not bars:
            continue
        fig, axes = _facet_axes(len(bars))
        for ax, (label, rows) in zip(axes, bars):
            _draw_stacked(ax, [x for x, _ in rows], [b for _, b in rows])
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("containers")
            ax.set_ylabel("share of samples")
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=5, fontsize=8, bbox_to_anchor=(0.5, -0.14))
        title = f"Kernel time attribution — {scenario}"
        fig.suptitle(title, fontsize=12)
        plots.append(Plot("attribution", title, _save(fig, outdir, f"attribution-{slug(scenario)}")))
    return plots or [Plot("attribution", "Kernel time attribution", skipped="no points carry attribution")]


def render_all(points, outdir):
    """All figures for ``points`` into ``outdir``; returns the Plot list in report order."""
    os.makedirs(outdir, exist_ok=True)
    plots = []
    for spec in LINE_SPECS:
        plots += line_plots(points, outdir, spec)
    plots += attribution_plots(points, outdir)
    return plots
