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
FACET_COLUMNS = 2  # three 5.6-inch panels side by side shrink to unreadable at the page's width
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
# Lines of one panel are drawn this much apart along a log x (a fraction of the value), so two
# identical lines stay visible as two rows of markers instead of one hiding the other.
DODGE = 0.025
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
    marker: str = "o"


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

class Palette:
    """One colour per kernel and one marker per machine, the same in every panel and figure."""

    def __init__(self, points=()):
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        kernels = sorted({p.group.kernel for p in points})
        systems = sorted({p.group.system for p in points})
        self.colors = {k: colors[i % len(colors)] for i, k in enumerate(kernels)}
        self.markers = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(systems)}

    def color(self, kernel):
        return self.colors.get(kernel, "black")

    def marker(self, system):
        return self.markers.get(system, "o")


PALETTE = Palette()  # replaced by render_all with one built from all its points


def _facet_axes(n, sharey=True):
    cols = min(n, FACET_COLUMNS)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 4.2 * rows), squeeze=False, layout="constrained",
                             sharey=sharey)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _duration_ns(value, _pos=None):
    """Tick label for a duration given in ns: 800 ns, 1.5 µs, 12 ms."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value:g} ns"


def _log_x(ax, ticks=()):
    """Container and worker counts span decades; a labelled tick at every measured count."""
    ax.set_xscale("log")
    if ticks:
        ax.set_xticks(sorted(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def save_figure(fig, outdir, stem, formats=FORMATS, dpi=110):
    """Write fig as outdir/stem.<fmt> for each format, close it; the file names written."""
    files = []
    for fmt in formats:
        name = f"{stem}.{fmt}"
        fig.savefig(os.path.join(outdir, name), dpi=dpi, bbox_inches="tight")
        files.append(name)
    plt.close(fig)
    return files


def _dodged(xs, i, n):
    """xs moved by DODGE × (i − centre) on a log axis, so identical lines do not hide each other."""
    factor = 1.0 + DODGE * (i - (n - 1) / 2.0)
    return [x * factor for x in xs]


def _draw_facets(facets, xlabel, ylabel, yformatter, ylog=False, ymax=None):
    """facets: {title: [Line]} -> figure with one axis per facet, all sharing the y axis."""
    fig, axes = _facet_axes(len(facets))
    for ax, (title, lines) in zip(axes, facets.items()):
        for i, line in enumerate(lines):
            ax.errorbar(_dodged(line.xs, i, len(lines)), line.ys, yerr=line.errs, fmt=line.marker + line.style,
                        color=line.color, label=line.label, capsize=3, markersize=5, linewidth=1.4,
                        markerfacecolor="none" if i % 2 else line.color)
        _log_x(ax, {x for line in lines for x in line.xs})
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylog:  # percentiles span decades; label 1-2-5 steps so a reader finds values
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(yformatter)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    if not ylog:  # once all panels are drawn: the shared y axis then spans all of their data
        axes[0].set_ylim(bottom=0, top=ymax)
    return fig


def _facet_lines(sweeps, facet_of, primary, lines_of):
    """Group sweeps into facets and turn each into Lines labelled by what differs in its facet."""
    grouped = {}
    for s in sweeps:
        grouped.setdefault(facet_of(s), []).append(s)
    facets = {}
    for title, members in grouped.items():
        labels = sweeps_mod.labels(members, primary)
        lines = []
        for i, (s, label) in enumerate(zip(members, labels)):
            drawn = lines_of(s, label, PALETTE.color(s.group.kernel))
            for line in drawn:
                line.marker = PALETTE.marker(s.group.system)
                if len(drawn) == 1:  # lines of one kernel and machine (placements, ...) differ in dash;
                    line.style = LINESTYLES[_same_style_index(members, i)]  # latency's dashes are percentiles
                lines.append(line)
        facets[title] = lines
    return {t: [ln for ln in lines if ln.xs] for t, lines in facets.items() if any(ln.xs for ln in lines)}


def _same_style_index(members, i):
    """How many earlier sweeps of this facet share sweep i's kernel and machine (its dash index)."""
    g = members[i].group
    same = sum(1 for s in members[:i] if (s.group.kernel, s.group.system) == (g.kernel, g.system))
    return same % len(LINESTYLES)


def _op_label(sweeps, template):
    """The y label naming the operation: "stat ops/s per worker"; "ops/s" when ops differ."""
    ops = {dict(s.fixed).get("op") for s in sweeps}
    op = ops.pop() if len(ops) == 1 else None
    return template.format(op=f"{op} " if op else "").strip()


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
    ymax: float = None  # top of the y axis when it has a natural one (a share reaches 100 %)


def line_plots(outdir, spec, sweeps):
    """One figure per scenario for a LineSpec, from the sweeps along its axis; a skipped Plot
    when nothing to draw."""
    plots = []
    for scenario, sweeps in _by_scenario(sweeps).items():
        title = f"{spec.title} — {scenario}"
        if all(len(s.xs) < 2 for s in sweeps):
            plots.append(Plot(spec.kind, title, skipped=f"no sweep along {spec.x} in this scenario"))
            continue
        facets = _facet_lines(sweeps, spec.facet, spec.primary, spec.lines)
        if not facets:
            continue
        fig = _draw_facets(facets, spec.x, _op_label(sweeps, spec.ylabel), spec.yformat, spec.ylog, spec.ymax)
        fig.suptitle(title, fontsize=12)
        plots.append(Plot(spec.kind, title, save_figure(fig, outdir, f"{spec.stem}-{slug(scenario)}")))
    return plots or [Plot(spec.kind, spec.title, skipped=spec.empty)]


def _kernel_on_system(s):
    return f"{s.group.kernel} on {s.group.system}"


_RATE = EngFormatter(sep="")  # the unit is in the y label: "stat ops/s per worker"
LINE_SPECS = [
    LineSpec("headline-kernels", "throughput-by-kernel", "Throughput vs containers, by kernel", "containers",
             facet=lambda s: s.group.system, primary="kernel", lines=_metric_line("items_per_second"),
             ylabel="{op}ops/s, all workers", yformat=_RATE,
             empty="no points with params.containers and items_per_second"),
    LineSpec("headline-machines", "throughput-by-machine", "Throughput vs containers, by machine", "containers",
             facet=lambda s: s.group.kernel, primary="system", lines=_metric_line("items_per_second"),
             ylabel="{op}ops/s, all workers", yformat=_RATE,
             empty="no points with params.containers and items_per_second"),
    LineSpec("per-worker", "per-worker", "Per-worker throughput vs workers, by placement", "workers",
             facet=_kernel_on_system, primary="placement", lines=_metric_line("ops_per_sec_per_worker"),
             ylabel="{op}ops/s per worker", yformat=_RATE,
             empty="no points with params.workers and ops_per_sec_per_worker"),
    LineSpec("latency", "latency", "Latency percentiles vs containers", "containers",
             facet=_kernel_on_system, primary="kernel", lines=_latency_lines, ylabel="{op}latency per operation",
             yformat=FuncFormatter(_duration_ns), ylog=True, empty="no points carry latency_ns"),
    LineSpec("time-split", "time-split", "Kernel share of worker CPU time vs containers", "containers",
             facet=lambda s: "sys / (sys + user)", primary="kernel", lines=_metric_line(sys_share),
             ylabel="kernel share of worker CPU time", yformat=PercentFormatter(1.0), ymax=1.0,
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


def attribution_plots(outdir, sweeps):
    """Stacked bars of kernel-time attribution buckets, one bar per point, a facet per sweep
    (the sweeps along containers)."""
    plots = []
    for scenario, sweeps in _by_scenario(sweeps).items():
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
        plots.append(Plot("attribution", title, save_figure(fig, outdir, f"attribution-{slug(scenario)}")))
    return plots or [Plot("attribution", "Kernel time attribution", skipped="no points carry attribution")]


def render_all(points, outdir, sweeps):
    """All figures for ``points`` into ``outdir``; returns the Plot list in report order.

    ``sweeps``: {axis: [Sweep]} for "containers" and "workers", the report's model's."""
    global PALETTE
    os.makedirs(outdir, exist_ok=True)
    PALETTE = Palette(points)
    plots = []
    for spec in LINE_SPECS:
        plots += line_plots(outdir, spec, sweeps[spec.x])
    plots += attribution_plots(outdir, sweeps["containers"])
    return plots
