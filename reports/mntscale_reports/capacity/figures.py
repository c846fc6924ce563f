"""capacity: the plots: each objective metric against N with N* and its interval, the
attribution buckets against N, and several results overlaid."""

import matplotlib.pyplot as plt

from ..plots import Plot, save_figure
from .model import _count, flat_buckets, METRICS, VERDICT_STYLE
from .reading import attribution_unit, _bound_of, unsupported
from .tables import labels


def _metrics_to_draw(results):
    """The objective metrics first, then any other metric measured."""
    slo = list(dict.fromkeys(s["metric"] for r in results for s in r.cap["slo"]))
    return slo or [m for m in METRICS if any(m in d["metrics"] for r in results for d in r.densities)]


def _draw_metric(ax, res, metric, color=None, label=None):
    ds = [d for d in res.densities if metric in d["metrics"]]
    if not ds:
        return
    xs = [d["containers"] for d in ds]
    ys = [d["metrics"][metric]["mean"] for d in ds]
    ax.plot(xs, ys, "-", color=color or "#555555", lw=1, label=label, zorder=1)
    for d, x, y in zip(ds, xs, ys):
        ci = d["metrics"][metric].get("ci")
        marker, c, fill = VERDICT_STYLE[d["verdicts"].get(metric, d["verdict"])]
        c = color or c  # several results: one colour each, the verdict still in the marker's shape and fill
        if ci:
            ax.errorbar([x], [y], yerr=[[max(0.0, y - ci[0])], [max(0.0, ci[1] - y)]], fmt="none",
                        ecolor=c, elinewidth=0.8, capsize=2, zorder=2)
        ax.plot([x], [y], marker=marker, color=c, mfc=c if fill == "full" else "white", mec=c, ms=6, ls="none",
                zorder=3)


def _mark_nstar(ax, res, color="#1f4e9c", text=True):
    bracket = res.result.get("bracket") or [None, None]
    if res.cap.get("version", 1) >= 2:  # the 95% interval, not the bracket
        bracket = [res.n_lo, res.n_hi]
    if bracket[0] and bracket[1]:
        ax.axvspan(bracket[0], bracket[1], color=color, alpha=0.12, lw=0)
    if res.n_star:
        ax.axvline(res.n_star, color=color, ls="--", lw=1)
        if text:
            ax.annotate(f"N*={_count(res.n_star)}", (res.n_star, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -12), textcoords="offset points", fontsize=8, color=color)


def metric_plot(res, outdir, stem="capacity-metrics"):
    metrics = _metrics_to_draw([res])
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7.5, 2.6 * len(metrics)), sharex=True,
                             layout="constrained", squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        _draw_metric(ax, res, metric)
        s = _bound_of(res, metric)
        if s:
            ax.axhline(s["bound"], color="#c0392b", lw=1, ls=":")
            ax.annotate(f"bound {s['op']} {s['bound']:g}", (1.0, s["bound"]), xycoords=("axes fraction", "data"),
                        xytext=(-4, 3), textcoords="offset points", ha="right", fontsize=8, color="#c0392b")
        _mark_nstar(ax, res)
        ax.set_xscale("log")
        ax.set_ylabel(f"{metric}\n({METRICS[metric][1]})", fontsize=8)
    handles = [plt.Line2D([], [], marker=m, color=c, mfc=c if f == "full" else "white", ls="none", label=v)
               for v, (m, c, f) in VERDICT_STYLE.items()]
    axes[0, 0].legend(handles=handles, fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("containers N (log)")
    title = f"Objective metrics against N — {res.profile}, {res.strategy}, {res.machine} / {res.kernel}"
    fig.suptitle(title, fontsize=10)
    return Plot("capacity", title, save_figure(fig, outdir, stem))


def attribution_plot(res, outdir, stem="capacity-attribution"):
    title = "Attribution against N (buckets, on and off CPU where recorded)"
    ds = [d for d in res.densities if flat_buckets(d.get("attribution"))]
    if not ds:
        why = unsupported(res)
        return Plot("capacity", title, skipped=f"unsupported: {'; '.join(why)}" if why
                    else "no density recorded attribution")
    buckets = list(dict.fromkeys(b for d in ds for b in flat_buckets(d["attribution"])))
    fig, ax = plt.subplots(figsize=(7.5, 3.2), layout="constrained")
    for i, b in enumerate(buckets):
        pts = [(d["containers"], flat_buckets(d["attribution"])[b]) for d in ds if b in flat_buckets(d["attribution"])]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=4, color=f"C{i % 10}", label=b)
    _mark_nstar(ax, res)
    ax.set_xscale("log")
    ax.set_xlabel("containers N (log)")
    ax.set_ylabel(attribution_unit(ds[0]["attribution"]), fontsize=8)
    ax.legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=10)
    return Plot("capacity", title, save_figure(fig, outdir, stem))


def overlay_plot(results, outdir):
    metrics = _metrics_to_draw(results)
    names = labels(results)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7.5, 2.6 * len(metrics)), sharex=True,
                             layout="constrained", squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        for i, (name, r) in enumerate(zip(names, results)):
            _draw_metric(ax, r, metric, color=f"C{i % 10}", label=name)
            _mark_nstar(ax, r, color=f"C{i % 10}", text=False)
        bounds = {(s["op"], s["bound"]) for r in results for s in r.cap["slo"] if s["metric"] == metric}
        for op, bound in sorted(bounds):
            ax.axhline(bound, color="#c0392b", lw=1, ls=":")
        ax.set_xscale("log")
        ax.set_ylabel(f"{metric}\n({METRICS[metric][1]})", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("containers N (log); dashed: each result's N*, dotted red: bounds; "
                           "X fail, hollow undecided")
    title = "Objective metrics against N, compared"
    fig.suptitle(title, fontsize=10)
    return Plot("capacity", title, save_figure(fig, outdir, "capacity-compare"))
