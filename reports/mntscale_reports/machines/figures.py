"""machines: the figures (matplotlib, PNG), with what each drew recorded on the report."""

import textwrap
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.ticker import EngFormatter, FuncFormatter  # noqa: E402

from ..plots import save_figure  # noqa: E402
from .loading import _hex  # noqa: E402
from .model import (  # noqa: E402
    churn_groups, CHURN_PLACES, CHURN_SCENARIO, _cross_pairs, densities, density_label,
    efficiency, html_ns, _interference, KNEE_EFFICIENCY, mean, per_core, placements, samples, scaling,
    SCALING_SCENARIO, _smt_ratio_pairs, spread_of, _storm_metric, STORM_METRICS, storm_points, STORM_SCENARIO,
    THROUGHPUT)


FORMATS = ("png",)  # the HTML shows PNGs; SVG doubled the time of a report for no reader


@dataclass
class Figure:
    kind: str
    title: str
    files: list = field(default_factory=list)
    skipped: str = None

    @property
    def image(self):
        return self.files[0] if self.files else None


def _grid(n, sharey):
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 4.0 * rows), squeeze=False, layout="constrained",
                             sharey=sharey)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _line(rep, figure, ax, panel, m, xs, ys, errs=None, style="-", label=None, marker="o"):
    drawn = ax.errorbar(xs, ys, yerr=errs, fmt=marker + style, color=m.color, label=label or m.name, capsize=3,
                        markersize=5, linewidth=1.4)
    _record(rep, figure, panel, m, drawn.lines[0].get_color())


def _record(rep, figure, panel, m, color):
    """What was drawn, with the colour read back from the artist (machines.json "lines")."""
    rep.drawn.append({"figure": figure, "panel": panel, "machine": m.name, "color": _hex(color)})


def _workers_x(ax, xs):
    ax.set_xscale("log", base=2)
    if xs:
        ax.set_xticks(sorted(xs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _pos: ""))


def _finish(rep, figure, fig, axes, titles, outdir, sharey, bottom=0):
    if sharey and axes:
        axes[0].set_ylim(bottom=bottom)
    for ax, title in zip(axes, titles):
        rep.panels.append({"figure": figure, "panel": title, "ylim": [float(v) for v in ax.get_ylim()],
                           "sharey": sharey})
    return save_figure(fig, outdir, f"machines-{figure}", FORMATS, dpi=100)


def _scaling_figure(rep, outdir, figure, title, metric, ylabel, eff=False):
    ds, pls = densities(rep.machines), placements(rep.machines)
    panels = [(d, pl) for d in ds for pl in pls]
    if not panels:
        return Figure(figure, title, skipped=f"no {SCALING_SCENARIO} point with a workers axis")
    fig, axes = _grid(len(panels), sharey=True)
    titles = []
    for ax, (d, pl) in zip(axes, panels):
        panel = f"{density_label(d, ds)}, {pl}"
        titles.append(panel)
        xs_all = set()
        for m in rep.machines:
            by = scaling(m).get(d, {}).get(pl)
            if not by:
                ax.plot([], [], color=m.color, label=f"{m.name}: not measured")
                continue
            if eff:
                e = efficiency(by)
                if not e:
                    ax.plot([], [], color=m.color, label=f"{m.name}: no 1-worker point")
                    continue
                xs, ys, errs = list(e), list(e.values()), None
            else:
                xs = sorted(by)
                vals = [samples(by[w], metric) for w in xs]
                ys, errs = [mean(v) for v in vals], [spread_of(v) for v in vals]
            xs_all.update(xs)
            _line(rep, figure, ax, panel, m, xs, ys, errs)
        if eff:
            ax.axhline(KNEE_EFFICIENCY, color="grey", linestyle=":", linewidth=1, label=f"knee bar {KNEE_EFFICIENCY:.0%}")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
        else:
            ax.yaxis.set_major_formatter(EngFormatter(sep=""))
        _workers_x(ax, xs_all)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("workers")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return Figure(figure, title, _finish(rep, figure, fig, axes, titles, outdir, sharey=True))


def _ratio_figure(rep, outdir, figure, title, pairs_of, xlabel, ylabel, why_none):
    """One panel per density: a ratio (with CI bars) per machine against x."""
    ds = densities(rep.machines)
    if not ds:
        return Figure(figure, title, skipped=why_none)
    fig, axes = _grid(len(ds), sharey=True)
    titles, any_line = [], False
    for ax, d in zip(axes, ds):
        panel = density_label(d, ds)
        titles.append(panel)
        for m in rep.machines:
            pts = [(x, r) for x, r in pairs_of(m, d) if r is not None]
            if not pts:
                ax.plot([], [], color=m.color, label=f"{m.name}: not measured")
                continue
            xs, ys = [x for x, _ in pts], [r.value for _, r in pts]
            # max(0, …): with few invocations the point estimate can sit just outside its percentile CI
            errs = [[max(0.0, r.value - r.low) if r.has_ci else 0 for _, r in pts],
                    [max(0.0, r.high - r.value) if r.has_ci else 0 for _, r in pts]]
            _line(rep, figure, ax, panel, m, xs, ys, errs)
            any_line = True
        ax.axhline(1.0, color="grey", linewidth=1)
        _workers_x(ax, {x for m in rep.machines for x, _ in pairs_of(m, d)})
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    if not any_line:
        plt.close(fig)
        return Figure(figure, title, skipped=why_none)
    return Figure(figure, title, _finish(rep, figure, fig, axes, titles, outdir, sharey=True))


def _churn_figure(rep, outdir):
    figure, title = "churn", "Path walks under mount churn: reader on the same socket and on the other socket"
    groups = {m.name: churn_groups(m) for m in rep.machines}
    labels = sorted({lb for g in groups.values() for lb in g})
    if not labels:
        return Figure(figure, title, skipped=f"no {CHURN_SCENARIO} point on any machine")
    places = [(lb, pl) for lb in labels for pl in CHURN_PLACES]
    fig, axes = _grid(1, sharey=True)
    ax = axes[0]
    width = 0.8 / len(rep.machines)
    for i, m in enumerate(rep.machines):
        for j, (lb, place) in enumerate(places):
            got = groups[m.name].get(lb, {}).get(place)
            x = j + (i - (len(rep.machines) - 1) / 2) * width
            xs = samples(got, _interference) if isinstance(got, list) else []
            if xs:
                bars = ax.bar([x], [mean(xs)], width, yerr=[spread_of(xs)], color=m.color, capsize=3,
                              label=m.name if m.name not in ax.get_legend_handles_labels()[1] else None)
                _record(rep, figure, "interference", m, bars.patches[0].get_facecolor())
            else:
                why = got if isinstance(got, str) else f"not measured on {m.name}"
                ax.text(x, 0.02, f"{m.name}: {why}", rotation=90, ha="center", va="bottom", fontsize=7,
                        color=m.color)
    # One point: its axes go to the title; several: wrapped under each pair of bars.
    title_axes = labels[0] if len(labels) == 1 else ""
    places = [pl if title_axes else textwrap.fill(lb, 28) + "\n" + pl for lb, pl in places]
    fig.set_figwidth(max(5.6, 1.6 * len(places)))
    ax.set_xticks(range(len(places)), places, fontsize=7)
    ax.set_xlim(-0.6, len(places) - 0.4)
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.set_ylabel("interference ratio (with ÷ without writer)")
    ax.set_title(textwrap.fill(f"churn_interference {title_axes}", 70), fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return Figure(figure, title, _finish(rep, figure, fig, axes, ["interference"], outdir, sharey=True))


def _storm_figure(rep, outdir):
    figure, title = "start-storm", "Container start storm: start latency and health-check tail per machine"
    labels = sorted({lb for m in rep.machines for lb in storm_points(m)})
    if not labels:
        return Figure(figure, title, skipped=f"no {STORM_SCENARIO} point on any machine")
    groups = (("start latency", STORM_METRICS[:2]), ("health-check tail during the storm", STORM_METRICS[2:]))
    fig, axes = _grid(2, sharey=False)
    titles = []
    for ax, (panel, metrics) in zip(axes, groups):
        titles.append(panel)
        ticks = [f"{lb}\n{t}" for lb in labels for t, _ in metrics]
        width = 0.8 / len(rep.machines)
        for i, m in enumerate(rep.machines):
            sp = storm_points(m)
            xs, ys, errs = [], [], []
            for k, (lb, (_t, key)) in enumerate((lb, mt) for lb in labels for mt in metrics):
                vals = samples(sp.get(lb, []), _storm_metric(key))
                if vals:
                    xs.append(k + (i - (len(rep.machines) - 1) / 2) * width)
                    ys.append(mean(vals))
                    errs.append(spread_of(vals))
            if xs:
                bars = ax.bar(xs, ys, width, yerr=errs, color=m.color, label=m.name, capsize=3)
                _record(rep, figure, panel, m, bars.patches[0].get_facecolor())
        ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: html_ns(v)))
        ax.set_title(panel, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return Figure(figure, title, _finish(rep, figure, fig, axes, titles, outdir, sharey=False, bottom=None))


def render_plots(rep, outdir):
    figs = [
        _scaling_figure(rep, outdir, "throughput", "Throughput against workers (all workers together)",
                        THROUGHPUT, "ops/s"),
        _scaling_figure(rep, outdir, "per-core", "Throughput per core used against workers", per_core,
                        "ops/s per core"),
        _scaling_figure(rep, outdir, "efficiency", "Scaling efficiency T(w) ÷ (w × T(1))", None, "efficiency",
                        eff=True),
        _ratio_figure(rep, outdir, "cross-socket", "Cross-socket penalty: spread ÷ socket:0 at equal workers",
                      _cross_pairs, "workers", "spread ÷ socket:0", "no machine measured both spread and socket:0"),
        _churn_figure(rep, outdir),
        _ratio_figure(rep, outdir, "smt", "SMT effect: smt-off ÷ spread at equal cores", _smt_ratio_pairs,
                      "cores used", "smt-off ÷ spread", "no machine measured smt-off and spread on equal cores"),
        _storm_figure(rep, outdir),
    ]
    rep.plots = figs
    return figs
