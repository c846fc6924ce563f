"""Compare machines (issue 13): one directory of invocation files per machine.

The sampling unit is the invocation, as in compare.py: each result file (one `mntscale run`)
contributes one mean per point, and a difference between machines is a ratio B/A of the
invocation means with a percentile-bootstrap 95% CI (stats.bootstrap_pct_ci). With fewer than
two invocations on either side the CI is "not available", never invented.

Definitions used in every table, plot and sentence:
- throughput: items_per_second of the point (all workers together);
- per core: throughput ÷ the distinct (package, core) pairs its measured workers ran on;
- scaling efficiency: T(w) ÷ (w × T(1)), both under the same placement and density;
- knee: the first measured worker count whose efficiency falls below KNEE_EFFICIENCY;
- sustained throughput at a density: path_walk at that container count, spread placement,
  at the most workers measured on that machine (the whole machine under procurement-v1);
- cross-socket penalty: spread ÷ socket:0 at equal workers, and churn_interference's
  interference ratio with the reader on the other socket against the same socket;
- SMT effect: "spread,smt-off" ÷ spread at an equal number of cores used.
"""

import json
import math
import os
import re
import textwrap
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.ticker import EngFormatter, FuncFormatter  # noqa: E402

from . import compare, html, load, stats, tables  # noqa: E402
from . import findings as findings_mod  # noqa: E402

THROUGHPUT = "items_per_second"
KNEE_EFFICIENCY = 0.8
SCALING_SCENARIO = "path_walk"
CHURN_SCENARIO = "churn_interference"
STORM_SCENARIO = "container_start_storm"
SPREAD, SOCKET0, SMT_OFF = "spread", "socket:0", "spread,smt-off"
PLACEMENT_ORDER = (SPREAD, "compact", SOCKET0, SMT_OFF)
# Axes that vary along a line, or between lines of one panel; the rest make the "density".
LINE_AXES = ("workers", "placement")
# tab10: fixed by the machine's position on the command line, the same in every panel.
COLORS = plt.get_cmap("tab10").colors
NOT_AVAILABLE = "CI not available"
FORMATS = ("png",)  # the HTML shows PNGs; SVG doubled the time of a report for no reader
NOISY_WARN = 0.2  # share of a machine's repetitions flagged noisy that earns a warning finding


class MachinesError(Exception):
    """Bad input: the CLI prints it and exits 2."""


@dataclass
class Machine:
    name: str
    directory: str
    results: list
    color: str = "black"
    points: dict = field(default_factory=dict)  # (scenario, params json) -> [Point]
    skips: dict = field(default_factory=dict)  # run_name -> reason
    warnings: list = field(default_factory=list)  # e.g. one directory, several kernels

    @property
    def topology(self):
        for r in self.results:
            t = r.context.get("topology")
            if isinstance(t, dict):
                return t
        return {}

    @property
    def kernels(self):
        """Kernel releases of the machine's results, each marked when it ran emulated (TCG)."""
        out = set()
        for r in self.results:
            k = r.context.get("kernel")
            if isinstance(k, dict) and isinstance(k.get("release"), str):
                emulated = k.get("emulated") is True
                out.add(k["release"] + (f" (emulated: {k.get('accelerator', 'tcg')}; not hardware timings)"
                                        if emulated else ""))
        return sorted(out)

    @property
    def has_smt(self):
        t = self.topology
        return bool(t.get("pus") and t.get("cores") and t["pus"] > t["cores"])

    @property
    def invocations(self):
        return len(self.results)

    def noisy(self):
        reps = [rep for pts in self.points.values() for p in pts for rep in p.reps]
        return sum(1 for rep in reps if rep.get("noisy")), len(reps)


def _key(point):
    return point.scenario, json.dumps(point.params, sort_keys=True)


def _name_from(results, directory):
    names = {str(r.context["machine"]["name"]) for r in results
             if isinstance(r.context.get("machine"), dict) and r.context["machine"].get("name")}
    if len(names) == 1:
        return names.pop()
    return os.path.basename(os.path.normpath(directory)) or directory


def load_machines(directories):
    """One Machine per directory; raises MachinesError on bad input. Returns (machines, load errors)."""
    if len(directories) < 2:
        raise MachinesError("machines needs at least two directories (one per machine) to compare")
    seen, machines, errors = {}, [], []
    for d in directories:
        if not os.path.isdir(d):
            raise MachinesError(f"{d!r} is not a directory (give one directory of result files per machine)")
        real = os.path.realpath(d)
        if real in seen:
            raise MachinesError(f"{d!r} is given more than once")
        seen[real] = d
        results, errs = load.load_many([d])
        errors += errs
        if not results:
            raise MachinesError(f"{d!r}: no result file could be loaded")
        # One directory is one machine: its files say which (context.machine), not its folder name.
        names = load.mix(results, load.machine_name)
        if len(names) > 1:
            raise MachinesError(f"{d!r} holds results of {len(names)} machines: {load.describe_mix(names)}; "
                                "give one directory per machine")
        machine = Machine(_name_from(results, d), d, results)
        kernels = load.mix(results, load.kernel_release)
        if len(kernels) > 1:
            machine.warnings.append(f"{d!r} ({machine.name}) mixes kernels: {load.describe_mix(kernels)}; its "
                                    "invocations are pooled as one machine, so a difference is partly the kernels'")
        machines.append(machine)
    names = [m.name for m in machines]
    for m in machines:  # two directories of one machine: tell them apart by directory
        if names.count(m.name) > 1:
            m.name = f"{m.name} ({os.path.basename(os.path.normpath(m.directory))})"
    for i, m in enumerate(machines):
        m.color = COLORS[i % len(COLORS)]
        for r in m.results:
            for p in r.points:
                m.points.setdefault(_key(p), []).append(p)
            for s in r.skipped:
                m.skips.setdefault(s.name, s.reason)
    return machines, errors


# --- metrics --------------------------------------------------------------------------------

def cores_used(rep):
    """Distinct (package, core) of the measured workers; None without a workers array."""
    workers = [w for w in rep.get("workers") or [] if isinstance(w, dict) and w.get("measured", True)]
    cores = {(w.get("package"), w.get("core")) for w in workers if "core" in w}
    return len(cores) or None


def per_core(rep):
    c = cores_used(rep)
    v = rep.get(THROUGHPUT)
    return v / c if c and load.is_number(v) else None


def samples(points, metric=THROUGHPUT):
    """One value per invocation over all files of one machine."""
    return [v for p in points for v in p.invocation_means(metric)]


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def spread_of(xs):
    """Sample std of the invocation means (the error bar), 0 for one invocation."""
    if len(xs) < 2:
        return 0.0
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


@dataclass
class Ratio:
    """b ÷ a over invocations, with a 95% CI when both sides have two or more."""

    value: float
    low: float = None
    high: float = None
    n_a: int = 0
    n_b: int = 0

    @property
    def has_ci(self):
        return self.low is not None

    def ci_text(self):
        if not self.has_ci:
            return f"{NOT_AVAILABLE}: {self.n_a}/{self.n_b} invocations, a CI needs 2 per side"
        return f"95% CI {self.low:.2f}–{self.high:.2f}×"

    def text(self):
        return f"{self.value:.2f}× ({self.ci_text()})"

    @property
    def excludes_one(self):
        return self.has_ci and (self.low > 1 or self.high < 1)


def ratio(a, b, seed_text):
    """Ratio of the means of b to a, CI by resampling invocations of each side independently."""
    if not a or not b or mean(a) <= 0:
        return None
    r = Ratio(mean(b) / mean(a), n_a=len(a), n_b=len(b))
    if len(a) >= 2 and len(b) >= 2 and min(a) > 0:
        lo, hi = stats.bootstrap_pct_ci(a, b, stats.seed_for(seed_text))
        r.low, r.high = 1 + lo / 100, 1 + hi / 100
    return r


# --- series ----------------------------------------------------------------------------------

def density_of(params):
    return json.dumps({k: v for k, v in params.items() if k not in LINE_AXES}, sort_keys=True)


def density_label(density, all_densities):
    """'1000 containers' plus any other axis that differs between the densities measured."""
    d = json.loads(density)
    others = [json.loads(x) for x in all_densities]
    varying = sorted(k for k in d if k != "containers" and len({json.dumps(o.get(k)) for o in others}) > 1)
    parts = [f"{d['containers']:,} containers"] if "containers" in d else []
    return ", ".join(parts + [f"{k}={d[k]}" for k in varying]) or "all points"


def scaling(machine, scenario=SCALING_SCENARIO):
    """{density: {placement: {workers: [Point]}}} of one machine's scaling scenario."""
    out = {}
    for (scen, _), pts in machine.points.items():
        if scen != scenario or "workers" not in pts[0].params:
            continue
        p = pts[0].params
        out.setdefault(density_of(p), {}).setdefault(str(p.get("placement", SPREAD)), {})[int(p["workers"])] = pts
    return out


def densities(machines):
    ds = {d for m in machines for d in scaling(m)}
    return sorted(ds, key=lambda d: (json.loads(d).get("containers", 0), d))


def placements(machines):
    ps = {pl for m in machines for by in scaling(m).values() for pl in by}
    return sorted(ps, key=lambda p: (PLACEMENT_ORDER.index(p) if p in PLACEMENT_ORDER else len(PLACEMENT_ORDER), p))


def efficiency(by_workers):
    """{workers: efficiency} from a placement's {workers: [Point]}; {} without a 1-worker point."""
    one = mean(samples(by_workers.get(1, [])))
    if not one:
        return {}
    return {w: mean(samples(pts)) / (w * one) for w, pts in sorted(by_workers.items())}


def knee(by_workers):
    """(knee workers or None, efficiency dict). None when efficiency never falls below the bar."""
    eff = efficiency(by_workers)
    for w, e in sorted(eff.items()):
        if w > 1 and e < KNEE_EFFICIENCY:
            return w, eff
    return None, eff


def sustained(machine, density):
    """(workers, [Point]) at the most workers measured under spread, or None."""
    by = scaling(machine).get(density, {}).get(SPREAD)
    if not by:
        return None
    w = max(by)
    return w, by[w]


def cores_of(points):
    cs = [cores_used(rep) for p in points for rep in p.reps]
    cs = [c for c in cs if c]
    return max(cs) if cs else None


# --- the report ------------------------------------------------------------------------------

@dataclass
class Report:
    machines: list
    errors: list
    tables: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    plots: list = field(default_factory=list)  # html-style Plot-like dicts
    drawn: list = field(default_factory=list)  # {"figure", "panel", "machine", "color"}: one per drawn line
    panels: list = field(default_factory=list)  # {"figure", "panel", "ylim", "sharey"}
    unsupported: list = field(default_factory=list)  # {"machine", "point", "reason"}

    def intro(self):
        parts = []
        for m in self.machines:
            noisy, reps = m.noisy()
            t = m.topology
            parts.append(f"{m.name}: {m.invocations} result files from {m.directory}, "
                         f"{t.get('packages', '?')} socket(s) / {t.get('cores', '?')} cores / {t.get('pus', '?')} PUs"
                         + (f", kernel {', '.join(m.kernels)}" if m.kernels else "")
                         + (f", {noisy} of {reps} repetitions flagged noisy" if noisy else "")
                         + f", resolution {stats.resolution_text(_all_points(m)) or 'no interval'}")
        kernels = {k for m in self.machines for k in m.kernels}
        if len(kernels) > 1:
            parts[-1] += (". The machines ran different kernels, so a difference is the kernel's as much as the "
                          "machine's")
        return ("Machines compared (reference: the first): " + "; ".join(parts) + ". Differences are ratios of "
                "invocation means with a 95% bootstrap CI over invocations; the knee is the first worker count "
                f"whose scaling efficiency T(w)/(w·T(1)) falls below {KNEE_EFFICIENCY:.0%}.")


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


def _all_points(m):
    return [p for pts in m.points.values() for p in pts]


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


CHURN_PLACES = ("same-socket", "other-socket")


def churn_groups(m):
    """{point label: {reader_placement: [Point] or skip reason}}: run names without their reader_placement."""
    out = {}

    def label_of(run_name):
        rest = re.sub(r"/reader_placement:[^/]*", "", run_name)
        return rest.split("/", 1)[1].replace("/", ", ").replace(":", "=") if "/" in rest else rest

    for (scen, _), pts in sorted(m.points.items()):
        if scen == CHURN_SCENARIO:
            place = str(pts[0].params.get("reader_placement"))
            out.setdefault(label_of(pts[0].run_name), {}).setdefault(place, []).extend(pts)
    for name, reason in sorted(m.skips.items()):
        found = re.search(r"/reader_placement:([^/]*)", name)
        if name.startswith(CHURN_SCENARIO + "/") and found:
            out.setdefault(label_of(name), {}).setdefault(found.group(1), reason)
    return out


def _interference(rep):
    v = (rep.get("extra") or {}).get("interference_ratio")
    return v if load.is_number(v) else None


def _smt_pairs(m, d):
    """[(cores, spread points, smt-off points)] at equal cores used; where several spread worker
    counts use the same cores, the most workers (SMT siblings filled) stand for spread."""
    by = scaling(m).get(d, {})
    spread = {cores_of(pts): pts for _, pts in sorted(by.get(SPREAD, {}).items())}
    off = {cores_of(pts): pts for _, pts in sorted(by.get(SMT_OFF, {}).items())}
    return [(c, spread[c], off[c]) for c in sorted(set(spread) & set(off) - {None})]


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


STORM_METRICS = (("start p50", "start_p50_ns"), ("start p99", "start_p99_ns"),
                 ("health-check p99", "health_p99_ns"), ("health-check p999", "health_p999_ns"))


def _storm_metric(name):
    def get(rep):
        extra = rep.get("extra") or {}
        if name == "health_p999_ns":
            v = (extra.get("health_latency_ns_storm") or {}).get("p999")
        else:
            v = extra.get(name)
        return v if load.is_number(v) else None
    return get


def storm_points(m):
    """{label: [Point]} of the start storm, labelled by its axes."""
    out = {}
    for (scen, _), pts in sorted(m.points.items()):
        if scen == STORM_SCENARIO:
            p = pts[0].params
            out[", ".join(f"{k}={p[k]}" for k in ("strategy", "layers", "parallel") if k in p)] = pts
    return out


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


def html_ns(v):
    if v is None:
        return "—"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.3g} ns"


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


# --- plots -----------------------------------------------------------------------------------

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


def _hex(color):
    return matplotlib.colors.to_hex(color)


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
    files = []
    for fmt in FORMATS:
        name = f"machines-{figure}.{fmt}"
        fig.savefig(os.path.join(outdir, name), dpi=100, bbox_inches="tight")
        files.append(name)
    plt.close(fig)
    return files


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


def _cross_pairs(m, d):
    by = scaling(m).get(d, {})
    spread, sock = by.get(SPREAD, {}), by.get(SOCKET0, {})
    return [(w, ratio(samples(sock[w]), samples(spread[w]), f"xs|{m.name}|{d}|{w}"))
            for w in sorted(set(spread) & set(sock))]


def _smt_ratio_pairs(m, d):
    return [(c, ratio(samples(sp), samples(off), f"smt|{m.name}|{d}|{c}")) for c, sp, off in _smt_pairs(m, d)]


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


# --- output ----------------------------------------------------------------------------------

def to_markdown(rep):
    lines = ["# mntscale machines", "", rep.intro(), "", "## Findings", ""]
    lines += [f"- {f}" for f in rep.findings] or ["(none)"]
    lines.append("")
    lines += [tables.markdown(t) for t in rep.tables]
    skipped = [f for f in rep.plots if f.skipped]
    if skipped:
        lines += ["### Plots not drawn", ""] + [f"- {f.title}: {f.skipped}" for f in skipped] + [""]
    return "\n".join(lines)


def to_html(rep):
    return html.render("machines.html", title="mntscale machines", heading="mntscale: machines compared",
                       intro=rep.intro(), findings=rep.findings or ["(none)"], tables_before=rep.tables[:2],
                       plots=rep.plots, tables_after=rep.tables[2:], errors=rep.errors)


def to_json(rep):
    return {
        "schema": "mntscale-machines", "schema_version": 1, "sampling_unit": "invocation",
        "knee_efficiency": KNEE_EFFICIENCY,
        "machines": [{"name": m.name, "directory": m.directory, "color": _hex(m.color), "files": m.invocations,
                      "topology": m.topology} for m in rep.machines],
        "findings": rep.findings,
        "tables": [{"title": t.title, "headers": t.headers, "rows": t.rows} for t in rep.tables],
        "unsupported": rep.unsupported,
        "plots": [{"kind": f.kind, "title": f.title, "files": f.files, "skipped": f.skipped} for f in rep.plots],
        "lines": rep.drawn,
        "panels": rep.panels,
    }


def write(rep, outdir):
    os.makedirs(outdir, exist_ok=True)
    render_plots(rep, outdir)
    for name, text in (("index.html", to_html(rep)), ("summary.md", to_markdown(rep)),
                       ("machines.json", json.dumps(to_json(rep), indent=1, ensure_ascii=False) + "\n")):
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
            f.write(text)
