"""capacity: the tables of one result (objectives, densities, attribution) and of several
(their capacities side by side)."""

import os

from ..tables import Table, num
from .model import _count, flat_buckets, METRICS
from .reading import attribution_unit, metric_name, noisy_counts, unsupported_reason, value_text


def slo_table(res):
    rows = [[s["metric"], metric_name(s["metric"]), s["op"], value_text(s["bound"], s["metric"])]
            for s in res.cap["slo"]]
    return Table("Objectives", ["metric", "what", "op", "bound"], rows)


def _cell(d, metric):
    m = d["metrics"].get(metric)
    if not m:
        return "—"
    text = num(m["mean"])
    if m.get("ci"):
        text += f" [{num(m['ci'][0])}, {num(m['ci'][1])}]"
    v = d["verdicts"].get(metric)
    return text + (f" {v}" if v else "")


def density_table(res):
    metrics = [m for m in METRICS if any(m in d["metrics"] for d in res.densities)]
    rows = []
    for d in res.densities:
        mark = " (N*)" if d["containers"] == res.n_star else ""
        noisy, total = noisy_counts(d)
        rows.append([f"{d['containers']}{mark}", str(d.get("phase", "?")), d["verdict"],
                     f"{total} ({noisy} noisy)" if noisy else str(total), num(d.get("seconds"))]
                    + [_cell(d, m) for m in metrics])
    return Table("Densities", ["containers", "phase", "verdict", "invocations", "seconds"] + metrics, rows,
                 note="mean [CI] and the metric's verdict; undecided = the CI straddles the bound after the maximum "
                      "of invocations.")


def attribution_table(res):
    buckets = list(dict.fromkeys(b for d in res.densities for b in flat_buckets(d.get("attribution"))))
    rows = []
    for d in res.densities:
        a = d.get("attribution")
        why = unsupported_reason(a)
        if why:
            rows.append([str(d["containers"])] + ["—"] * len(buckets) + [f"unsupported: {why}"])
            continue
        fb = flat_buckets(a)
        rows.append([str(d["containers"])] + [num(fb.get(b)) for b in buckets]
                    + ["" if a else "not recorded"])
    unit = next(filter(None, (attribution_unit(d.get("attribution")) for d in res.densities)), "")
    return Table("Attribution against N", ["containers"] + buckets + ["note"], rows, note=unit)


def context_label_parts(res):
    return {"machine": res.machine, "kernel": res.kernel, "profile": res.profile, "churn": res.strategy}


def labels(results):
    """A short label per result from what differs between them (machine, kernel, profile, churn)."""
    parts = [context_label_parts(r) for r in results]
    differ = [k for k in ("machine", "kernel", "profile", "churn") if len({p[k] for p in parts}) > 1]
    out = [" / ".join(p[k] for k in differ) if differ else "" for p in parts]
    if len(set(out)) < len(out) or not all(out):
        out = [(o + " " if o else "") + f"({os.path.basename(r.path)})" for o, r in zip(out, results)]
    return out


def comparison_table(results):
    rows = []
    for label, r in zip(labels(results), results):
        bracket = r.result.get("bracket") or [None, None]
        if r.cap.get("version", 1) >= 2:
            bracket = [r.n_lo, r.n_hi]
        rows.append([label, r.machine, r.kernel, r.profile, r.strategy,
                     _count(r.n_star) if r.n_star is not None else "none",
                     f"[{bracket[0] if bracket[0] is not None else '—'}, {bracket[1] if bracket[1] is not None else '—'}]",
                     r.result["ended_by"] + ("" if r.complete else " (incomplete)"),
                     str(r.result.get("failed_metric") or "—")])
    return Table("Capacities compared", ["label", "machine", "kernel", "profile", "churn", "N*", "interval (v1: bracket)",
                                         "ended by", "failed metric"], rows,
                 note="N* is the largest density that passed every objective; a number measured on one machine and "
                      "kernel, not a property of others.")
