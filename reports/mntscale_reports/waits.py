"""Where worker time goes, on and off CPU (`mntscale run --waits`).

Reads each point's ``time_decomposition`` and ``waits`` sections: a stacked bar per
point and role of wall time (user / on-CPU kernel by bucket / blocked by bucket /
preempted), a table of lock waits per point, and a table of which attribution parts
were unsupported and why. Only the last repetition of a point is drawn: the
sections describe one traced run, not a distribution.
"""

import matplotlib.pyplot as plt

from .plots import Plot, save_figure, slug
from .tables import Table, num

# Segment order in a bar; colours per family so blocked and on-CPU buckets read apart.
_FAMILIES = (("user", "Greens"), ("kernel", "Blues"), ("blocked", "Reds"))
_NOISE = {"preempted": "#bbbbbb", "off-CPU unknown": "#eeeeee", "residual": "#ffffff"}
_PARTS = ("attribution", "waits", "waits.locks", "waits.off_cpu", "time_decomposition",
          "time_decomposition.kernel_split")


def _last_with(point, key):
    reps = point.with_key(key)
    return reps[-1] if reps else None


def segments(role):
    """One role's decomposition as ordered (label, seconds) segments."""
    segs = [("user", float(role.get("user_s", 0.0)))]
    for family, key in (("kernel", "kernel_s"), ("blocked", "blocked_s")):
        for bucket, s in sorted((role.get(key) or {}).items()):
            segs.append((f"{family}: {bucket}", float(s)))
    segs.append(("preempted", float(role.get("preempted_s", 0.0))))
    segs.append(("off-CPU unknown", float(role.get("off_cpu_unknown_s", 0.0))))
    segs.append(("residual", max(0.0, float(role.get("residual_s", 0.0)))))
    return segs


def _order(label):
    """Bar order: user, on-CPU kernel buckets, blocked buckets, then the noise parts."""
    family = label.split(":", 1)[0]
    rank = {"user": 0, "kernel": 1, "blocked": 2, "preempted": 3, "off-CPU unknown": 4, "residual": 5}
    return (rank.get(family, 6), label)


def _colors(labels):
    out = {}
    for family, cmap_name in _FAMILIES:
        mine = [lb for lb in labels if lb == family or lb.startswith(family + ":")]
        cmap = plt.get_cmap(cmap_name)
        for i, lb in enumerate(mine):
            out[lb] = cmap(0.45 + 0.5 * i / max(1, len(mine)))
    out.update({k: v for k, v in _NOISE.items() if k in labels})
    return out


def bars(points):
    """(scenario, [(bar label, segments)]) for points that carry a decomposition."""
    by_scenario = {}
    for p in points:
        d = _last_with(p, "time_decomposition")
        if not d or "roles" not in d:
            continue
        for role, r in sorted(d["roles"].items()):
            wall = float(r.get("wall_s") or 0.0)
            if wall <= 0:
                continue
            segs = [(lb, s / wall) for lb, s in segments(r)]
            by_scenario.setdefault(p.scenario, []).append((f"{p.run_name}\n[{role}]", segs))
    return by_scenario


def decomposition_plots(points, outdir):
    """Stacked bars of worker wall time, one bar per point and role, one figure per scenario.

    Nothing (not even a skipped entry) when no point was run with --waits.
    """
    plots = []
    for scenario, rows in bars(points).items():
        fig, ax = plt.subplots(figsize=(10, 1.6 + 0.45 * len(rows)), layout="constrained")
        labels = sorted(dict.fromkeys(lb for _, segs in rows for lb, _ in segs), key=_order)
        colors = _colors(labels)
        names = [name.split("/", 1)[-1] if "/" in name else name for name, _ in rows]
        bottoms = [0.0] * len(rows)
        for lb in labels:
            heights = [dict(segs).get(lb, 0.0) for _, segs in rows]
            ax.barh(range(len(rows)), heights, left=bottoms, label=lb, color=colors.get(lb),
                    edgecolor="#999999" if lb in _NOISE else None, hatch="//" if lb == "preempted" else None)
            bottoms = [b + h for b, h in zip(bottoms, heights)]
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(names, fontsize=6)
        ax.set_xlabel("share of worker wall time (preempted = shared-CPU noise)")
        ax.legend(loc="upper center", ncol=3, fontsize=7, bbox_to_anchor=(0.5, -0.18))
        title = f"Where worker time goes — {scenario}"
        fig.suptitle(title, fontsize=12)
        plots.append(Plot("attribution", title, save_figure(fig, outdir, f"decomposition-{slug(scenario)}")))
    return plots


def storm_waits(points):
    """{strategy: [(layers, namespace_sem s per start, rcu_wait s per start)]} for start-storm
    points traced with --waits: what the starters waited for, as the mount-table writes per start
    grow with layers (per-layer idmaps) or stay flat (one idmapped parent)."""
    out = {}
    for p in points:
        if p.scenario != "container_start_storm":
            continue
        rep = _last_with(p, "time_decomposition")
        if not rep or "roles" not in rep:
            continue
        starts = float(p.reps[-1].get("iterations") or 0)
        if starts <= 0:
            continue
        blocked = {}
        for r in rep["roles"].values():
            for bucket, sec in (r.get("blocked_s") or {}).items():
                blocked[bucket] = blocked.get(bucket, 0.0) + float(sec)
        out.setdefault(str(p.params.get("strategy")), []).append(
            (p.params.get("layers"), blocked.get("namespace_sem", 0.0) / starts,
             blocked.get("rcu_wait", 0.0) / starts))
    return {k: sorted(v) for k, v in out.items()}


def storm_wait_plot(points, outdir):
    """namespace_sem and RCU-grace-period waits per container start against layers, per strategy."""
    series = storm_waits(points)
    if not series:
        return []
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for i, (strategy, rows) in enumerate(sorted(series.items())):
        xs = [r[0] for r in rows]
        colour = f"C{i}"
        ax.plot(xs, [1e3 * r[1] for r in rows], marker="o", color=colour, label=f"{strategy}: namespace_sem")
        ax.plot(xs, [1e3 * r[2] for r in rows], marker="s", ls="--", color=colour, label=f"{strategy}: rcu_wait")
    ax.set_xlabel("image layers per container")
    ax.set_ylabel("blocked ms per container start")
    ax.legend(fontsize=7)
    title = "Start storm: what the starters waited for"
    fig.suptitle(title, fontsize=12)
    return [Plot("attribution", title, save_figure(fig, outdir, "storm-waits"))]


def lock_wait_table(points):
    """Lock waits per point, role and bucket: count, total, max, p99 (buckets with waits only)."""
    rows = []
    for p in points:
        w = _last_with(p, "waits")
        locks = (w or {}).get("locks") or {}
        for role, buckets in sorted((locks.get("roles") or {}).items()):
            for bucket, s in sorted(buckets.items()):
                if not s.get("count"):
                    continue
                top = (s.get("sites") or [{}])[0].get("site", "")
                rows.append([p.run_name, role, bucket, str(s["count"]), num(s.get("total_s")),
                             num(s.get("max_s")), num(s.get("p99_s")), top])
    return Table("Lock waits", ["point", "role", "lock (bucket)", "count", "total (s)", "max (s)", "p99 (s)",
                                "top site"], rows,
                 note="From lock:contention_begin/end; a wait is named by the call chain at its begin.")


def _part(rep, dotted):
    d = rep
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def support_table(points):
    """Which attribution parts were unsupported on each point, and why."""
    rows = []
    for p in points:
        rep = p.reps[-1]
        for part in _PARTS:
            v = _part(rep, part)
            if isinstance(v, dict) and "unsupported" in v:
                rows.append([p.run_name, part, str(v["unsupported"])])
            elif isinstance(v, str) and v.startswith("unsupported"):
                rows.append([p.run_name, part, v])
    return Table("Attribution: unsupported parts", ["point", "part", "why"], rows,
                 note="A part missing here either ran or was not asked for (--attribute, --waits).")


def tables(points):
    """The wait tables that have rows, for the report's detail section."""
    return [t for t in (lock_wait_table(points), support_table(points)) if t.rows]
