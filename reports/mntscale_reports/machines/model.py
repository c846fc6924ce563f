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
import re
from dataclasses import dataclass, field

from .. import load, stats


THROUGHPUT = "items_per_second"
KNEE_EFFICIENCY = 0.8
SCALING_SCENARIO = "path_walk"
CHURN_SCENARIO = "churn_interference"
STORM_SCENARIO = "container_start_storm"
SPREAD, SOCKET0, SMT_OFF = "spread", "socket:0", "spread,smt-off"
PLACEMENT_ORDER = (SPREAD, "compact", SOCKET0, SMT_OFF)
# Axes that vary along a line, or between lines of one panel; the rest make the "density".
LINE_AXES = ("workers", "placement")
NOT_AVAILABLE = "CI not available"



# --- metrics ---------------------------------------------------------------------------------

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


def _cross_pairs(m, d):
    by = scaling(m).get(d, {})
    spread, sock = by.get(SPREAD, {}), by.get(SOCKET0, {})
    return [(w, ratio(samples(sock[w]), samples(spread[w]), f"xs|{m.name}|{d}|{w}"))
            for w in sorted(set(spread) & set(sock))]


def _smt_pairs(m, d):
    """[(cores, spread points, smt-off points)] at equal cores used; where several spread worker
    counts use the same cores, the most workers (SMT siblings filled) stand for spread."""
    by = scaling(m).get(d, {})
    spread = {cores_of(pts): pts for _, pts in sorted(by.get(SPREAD, {}).items())}
    off = {cores_of(pts): pts for _, pts in sorted(by.get(SMT_OFF, {}).items())}
    return [(c, spread[c], off[c]) for c in sorted(set(spread) & set(off) - {None})]


def _smt_ratio_pairs(m, d):
    return [(c, ratio(samples(sp), samples(off), f"smt|{m.name}|{d}|{c}")) for c, sp, off in _smt_pairs(m, d)]


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


def html_ns(v):
    if v is None:
        return "—"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.3g} ns"



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


def _all_points(m):
    return [p for pts in m.points.values() for p in pts]
