"""machines: the report's tables and the findings stated beside them (build)."""

import json

from .. import compare, tables
from .. import findings as findings_mod
from .model import (churn_groups, CHURN_PLACES, cores_of, _cross_pairs, densities, density_label, html_ns,
    _interference, knee, KNEE_EFFICIENCY, mean, NOT_AVAILABLE, per_core, ratio, Report, samples, scaling,
    SCALING_SCENARIO, _smt_pairs, SOCKET0, SPREAD, _storm_metric, STORM_METRICS, storm_points, sustained)


NOISY_WARN = 0.2  # share of a machine's repetitions flagged noisy that earns a warning finding


def _what(scenario):
    return "path walks" if scenario == SCALING_SCENARIO else f"{scenario} ops"


# A verdict ("sustains") needs as many invocations per machine as compare's gate does.
MIN_INVOCATIONS = compare.Options().min_invocations


def _finding_ratio(a, b, r, what, where):
    """One sentence naming the machine that sustains more, with the CI (or why there is none)."""
    each = f"{r.n_a} invocations of {a.name}, {r.n_b} of {b.name}" if r.n_a != r.n_b else \
        f"{r.n_a} invocation{'s' if r.n_a != 1 else ''} each"
    if r.has_ci and not r.excludes_one:
        return (f"{b.name} and {a.name} are not told apart on {what} {where}: {b.name}/{a.name} = "
                f"{r.value:.2f}× (95% CI {r.low:.2f}–{r.high:.2f}×, {each}).")
    if r.value >= 1:
        hi, lo, v, ci = b, a, r.value, (r.low, r.high)
    else:
        hi, lo, v = a, b, 1 / r.value
        ci = (1 / r.high, 1 / r.low) if r.has_ci else (None, None)
    ci_text = f"95% CI {ci[0]:.2f}–{ci[1]:.2f}×" if ci[0] is not None else \
        f"{NOT_AVAILABLE}: a CI needs 2 invocations per machine"
    if min(r.n_a, r.n_b) < MIN_INVOCATIONS:
        # compare's rule: below it a bootstrap CI over 2-3 invocations is too narrow to trust
        # (two names for one machine read 1.03x apart at 3 invocations each).
        return (f"{hi.name} reads {v:.2f}× {lo.name}'s {what} {where} ({ci_text}, {each}); no verdict: "
                f"one needs {MIN_INVOCATIONS} invocations per machine.")
    return f"{hi.name} sustains {v:.2f}× {lo.name}'s {what} {where} ({ci_text}, {each})."


def _say(rep, text, points, subject):
    """Append a finding, or -- when at least half the repetitions behind it were flagged noisy --
    "Not stated: <subject>: measured on a busy machine (N of M repetitions noisy)"."""
    noisy, total = findings_mod.noisy_share(points)
    rep.findings.append(findings_mod.withheld_text(subject, noisy, total) if findings_mod.busy(noisy, total)
                        else text)


def _mark_unsupported(rep):
    """Points measured on some machine and not on another, and points skipped with a reason."""
    for m in rep.machines:
        for name, reason in sorted(m.skips.items()):
            rep.unsupported.append({"machine": m.name, "point": name, "reason": reason})
        others = {}
        for o in rep.machines:
            if o is not m:
                for k, pts in o.points.items():
                    others.setdefault(k, pts[0].run_name)
        for k, run_name in sorted(others.items()):
            if k not in m.points:
                placement = json.loads(k[1]).get("placement")
                label = run_name if placement is None or "placement:" in run_name else f"{run_name} ({placement})"
                reason = m.skips.get(run_name, f"not measured on {m.name}")
                if run_name not in m.skips:
                    rep.unsupported.append({"machine": m.name, "point": label, "reason": reason})


def _ratio_cells(r):
    return ("—", "—") if r is None else (f"{r.value:.2f}×", r.ci_text() if not r.has_ci else
                                         f"{r.low:.2f}–{r.high:.2f}×")


def _knee_table(rep, ds):
    rows = []
    for m in rep.machines:
        for d in ds:
            for pl, by in sorted(scaling(m).get(d, {}).items()):
                k, eff = knee(by)
                ws = sorted(by)
                if not eff:
                    cell, e_max = "not measured (no 1-worker point)", "—"
                elif len(ws) < 2:
                    cell, e_max = "not measured (one worker count)", "—"
                else:
                    cell = f"{k} workers (efficiency {eff[k]:.0%})" if k else \
                        f"none up to {ws[-1]} workers (efficiency ≥ {KNEE_EFFICIENCY:.0%})"
                    e_max = f"{eff[ws[-1]]:.0%}"
                rows.append([m.name, density_label(d, ds), pl, ",".join(map(str, ws)), e_max, cell])
                if eff and len(ws) >= 2 and pl == SPREAD:
                    _say(rep, f"{m.name} ({density_label(d, ds)}, spread): " + (
                            f"knee at {k} workers, where scaling efficiency falls to {eff[k]:.0%}."
                            if k else f"no knee up to {ws[-1]} workers (efficiency {eff[ws[-1]]:.0%} there)."),
                         [p for w in ws for p in by[w]], f"{m.name} ({density_label(d, ds)}, spread): knee")
    return tables.Table("Knee per machine", ["machine", "density", "placement", "workers measured",
                                             "efficiency at most workers", "knee"], rows,
                        note=f"Knee: the first worker count whose efficiency T(w)/(w·T(1)) is below "
                             f"{KNEE_EFFICIENCY:.0%}; efficiency uses the means over invocations.")


def _sustained_table(rep, ds):
    ref = rep.machines[0]
    rows = []
    for d in ds:
        label = density_label(d, ds)
        base = sustained(ref, d)
        for m in rep.machines:
            got = sustained(m, d)
            if got is None:
                rows.append([label, m.name, "—", "not measured (no spread point)", "—", "—", "—", "—", "—"])
                continue
            w, pts = got
            tp, pc = samples(pts), samples(pts, per_core)
            cells = [label, m.name, f"{w} on {cores_of(pts) or '?'} cores", tables.rate(mean(tp)),
                     tables.rate(mean(pc)), str(len(tp))]
            if m is ref or base is None:
                rows.append(cells + (["reference", "", ""] if m is ref else ["—", "—", "—"]))
                continue
            seed = f"{d}|{m.name}|{ref.name}"
            r_tp = ratio(samples(base[1]), tp, seed + "|tp")
            r_pc = ratio(samples(base[1], per_core), pc, seed + "|pc")
            rows.append(cells + [_ratio_cells(r_tp)[0], _ratio_cells(r_pc)[0], _ratio_cells(r_pc)[1]])
            if r_pc is not None:
                _say(rep, _finding_ratio(ref, m, r_pc, _what(SCALING_SCENARIO) + " per core", f"at {label}"),
                     base[1] + pts, f"{m.name} against {ref.name}: path walks per core at {label}")
            if r_tp is not None:
                _say(rep, _finding_ratio(ref, m, r_tp, "total " + _what(SCALING_SCENARIO),
                                         f"at {label} with {w} workers against {base[0]}"), base[1] + pts,
                     f"{m.name} against {ref.name}: total path walks at {label}")
    return tables.Table(
        f"Sustained throughput at each density (path_walk, spread, most workers; B/A against {ref.name})",
        ["density", "machine", "workers", "ops/s", "ops/s per core", "invocations", "B/A ops/s",
         "B/A per core", "B/A per core 95% CI"], rows,
        note="Ratios are of invocation means; the CI resamples each machine's invocations "
             "(percentile bootstrap). One invocation on either side: CI not available.")


def _cross_socket_table(rep, ds):
    rows = []
    for m in rep.machines:
        sc = scaling(m)
        for d in ds:
            sock = sc.get(d, {}).get(SOCKET0, {})
            if not sock:
                rows.append([m.name, density_label(d, ds), "—", "—", "not measured (no socket:0 placement)"])
                continue
            one = "; one socket: both placements use the same socket" if m.topology.get("packages") == 1 else ""
            for w, r in _cross_pairs(m, d):
                rows.append([m.name, density_label(d, ds), str(w), _ratio_cells(r)[0], _ratio_cells(r)[1] + one])
    churn = []
    for m in rep.machines:
        for label, by_place in churn_groups(m).items():
            for place in CHURN_PLACES:
                got = by_place.get(place)
                if isinstance(got, list):
                    xs = samples(got, _interference)
                    churn.append([m.name, label, place, f"{mean(xs):.2f}" if xs else "—", str(len(xs))])
                else:
                    churn.append([m.name, label, place, got or f"not measured on {m.name}", "0"])
                    if got:
                        rep.findings.append(f"{m.name}: churn_interference ({label}) with reader_placement={place} "
                                            f"is {got}.")
            if all(isinstance(by_place.get(p), list) for p in CHURN_PLACES):
                r = ratio(samples(by_place["same-socket"], _interference),
                          samples(by_place["other-socket"], _interference), f"churn|{m.name}|{label}")
                if r is not None:
                    _say(rep, f"{m.name} ({label}): path walks keep {r.value:.2f}× as much throughput under churn "
                              f"from the other socket as from the same socket ({r.ci_text()}).",
                         by_place["same-socket"] + by_place["other-socket"],
                         f"{m.name} ({label}): churn from the other socket against the same socket")
    return [tables.Table("Cross-socket penalty: spread ÷ socket:0 at equal workers",
                         ["machine", "density", "workers", "spread/socket:0", "95% CI"], rows,
                         note="Below 1: spreading over sockets costs throughput against keeping to one socket."),
            tables.Table("Mount churn from the same and the other socket (churn_interference)",
                         ["machine", "point", "writer against readers", "interference ratio (with ÷ without writer)",
                          "invocations"],
                         churn, note="Unsupported points show their reason, never 0.")]


def _smt_table(rep, ds):
    rows = []
    for m in rep.machines:
        for d in ds:
            pairs = _smt_pairs(m, d)
            if not pairs:
                rows.append([m.name, density_label(d, ds), "—", "—", "not measured (no smt-off point at the "
                                                                  "cores spread used)"])
                continue
            for c, sp, off in pairs:
                r = ratio(samples(sp), samples(off), f"smt|{m.name}|{d}|{c}")
                note = "" if m.has_smt else "; no SMT siblings here (1 thread per core): both use the same PUs"
                rows.append([m.name, density_label(d, ds), str(c), _ratio_cells(r)[0], _ratio_cells(r)[1] + note])
            if m.has_smt and pairs:
                c, sp, off = pairs[-1]
                r = ratio(samples(sp), samples(off), f"smt|{m.name}|{d}|{c}")
                _say(rep, f"{m.name} ({density_label(d, ds)}): SMT off gives {r.value:.2f}× spread's "
                          f"throughput at {c} cores ({r.ci_text()}).", sp + off,
                     f"{m.name} ({density_label(d, ds)}): SMT off against spread at {c} cores")
    return tables.Table("SMT effect: smt-off ÷ spread at equal cores", ["machine", "density", "cores used",
                                                                        "smt-off/spread", "95% CI"], rows,
                        note="Above 1: one PU per core does more than filling SMT siblings on the same cores.")


def _storm_table(rep):
    rows = []
    for m in rep.machines:
        for label, pts in storm_points(m).items():
            cells = [m.name, label]
            for _title, key in STORM_METRICS:
                xs = samples(pts, _storm_metric(key))
                cells.append(html_ns(mean(xs)) if xs else "not measured")
            rows.append(cells + [str(len(samples(pts)))])
    return tables.Table("Container start storm: start latency and health-check tail",
                        ["machine", "point"] + [t for t, _ in STORM_METRICS] + ["invocations"], rows)


def _unsupported_table(rep):
    return tables.Table("Unsupported or not measured", ["machine", "point", "reason"],
                        [[u["machine"], u["point"], u["reason"]] for u in rep.unsupported],
                        note="Never plotted as 0.")


def build(machines, errors):
    rep = Report(machines, errors)
    ds = densities(machines)
    _mark_unsupported(rep)
    for m in machines:
        noisy, reps = m.noisy()
        if reps and noisy / reps >= NOISY_WARN:
            rep.findings.append(f"⚠ {noisy} of {reps} repetitions on {m.name} were flagged noisy (other tasks ran on "
                                "its worker CPUs): differences below may be the neighbours', not the machine's.")
    rep.tables.append(_sustained_table(rep, ds))
    rep.tables.append(_knee_table(rep, ds))
    rep.tables.extend(_cross_socket_table(rep, ds))
    rep.tables.append(_smt_table(rep, ds))
    rep.tables.append(_storm_table(rep))
    rep.tables.append(_unsupported_table(rep))
    return rep
