"""Findings: what the data shows, in sentences, at the top of index.html and summary.md.

Every sentence is computed from the measured points and says how much it rests on:

- **flat**: a sweep's per-worker throughput whose means spread (max − min) / mean by at
  most FLAT_PCT; the sentence gives the range measured and the spread, never more;
- **grows / falls**: first to last value of a sweep that changes monotonically by more
  than that, with the change's 95 % bootstrap CI over repetitions and, when a line fits
  (R² ≥ LINEAR_R2 on at least 3 points) or only two points were measured, the change
  per unit of the axis;
- **varies**: a sweep that is neither flat nor monotonic: only its spread and extremes;
- **expectations**: claims that deviate (with numbers) and a count of those that hold or
  were not tested (claims.py).

Sentences are ordered: deviations first, then the largest effects (by |change|), then
flat findings.

Never from noise: a sweep whose repetitions mntscale flagged "noisy" (other tasks or the
hypervisor took the worker CPUs) for at least NOISY_WITHHOLD of the total states nothing;
it is listed as "Not stated: … measured on a busy machine (N of M repetitions noisy)".
A default run once opened with "per-worker stat throughput falls 29–52% from 1 to 2
workers", drawn from points of which 11 of 24 repetitions were noisy.
"""

import math
from dataclasses import dataclass

from . import claims as claims_mod
from . import stats
from . import sweeps as sweeps_mod

FLAT_PCT = 10.0  # spread of the means at or below which a sweep is called flat
LINEAR_R2 = 0.9  # a per-unit rate is given only when a line fits at least this well
AXES = ("containers", "workers")
MAX_EFFECTS = 6  # effect sentences shown; the rest are counted
NOISY_WITHHOLD = stats.NOISY_WITHHOLD


noisy_share, busy, withheld_text = stats.noisy_share, stats.busy, stats.withheld_text


@dataclass
class Finding:
    kind: str  # deviation | effect | flat | varies | claims | withheld
    text: str
    size: float = 0.0  # |change| in percent, for ordering


def _op_metric(sweep):
    """(getter, name): per-worker throughput when the scenario has workers, else aggregate."""
    op = dict(sweep.fixed).get("op")
    op_text = f"{op} " if op else ""
    if any("workers" in p.params for pts in sweep.points for p in pts):
        return claims_mod.metric_getter("items_per_second_per_worker"), f"per-worker {op_text}throughput"
    return "items_per_second", f"{op_text}throughput"


def _unit(axis, x):
    return axis[:-1] if axis.endswith("s") and float(x) == 1 else axis


def _rate(v):
    """1.43 Mops/s, 523 ops/s."""
    t = claims_mod.fmt(v)
    return f"{t}ops/s" if t[-1].isalpha() else f"{t} ops/s"


def _ci(first, last, key):
    """(lo, hi, n_a, n_b): 95 % bootstrap CI of the change first -> last over repetitions; None with one each."""
    a, b = [v for p in first for v in p.values(key)], [v for p in last for v in p.values(key)]
    if min(len(a), len(b)) < 2:
        return None
    lo, hi = stats.bootstrap_pct_ci(a, b, stats.seed_for(first[0].run_name + last[0].run_name))
    return lo, hi, len(a), len(b)


def _ci_text(ci):
    if ci is None:
        return "one repetition per point: no confidence interval"
    text = f"95% CI {ci[0]:+.1f}% to {ci[1]:+.1f}%"
    return text + (", which includes no change" if ci[0] <= 0 <= ci[1] else "")


def _varying(sweeps):
    """Names of fixed params that differ among these sweeps: what tells their sentences apart."""
    fixed = [dict(s.fixed) for s in sweeps]
    keys = sorted({k for f in fixed for k in f})
    return [k for k in keys if len({str(f.get(k)) for f in fixed}) > 1]


def _where(sweep, keys):
    f = dict(sweep.fixed)
    return ", ".join(f"{k}={f.get(k)}" for k in keys)


@dataclass
class Trend:
    """What one sweep of the metric did: flat, a monotonic effect, or neither."""

    kind: str  # flat | effect | varies
    span: str  # "from 1 to 300 containers"
    spread: float  # (max − min) / mean, percent
    means: list
    xs: list
    change: float = 0.0  # last vs first, percent
    ci: tuple = None
    rate_note: str = ""  # per-unit change, or why none

    @property
    def size(self):
        return abs(self.change) if self.kind == "effect" else self.spread

    def fragment(self):
        """The sentence after '<subject> '."""
        if self.kind == "flat":
            return (f"is flat {self.span} (spread of the means {self.spread:.1f}%; ≤ {FLAT_PCT:g}% counts as flat; "
                    f"last vs first {_ci_text(self.ci)})")
        if self.kind == "varies":
            lo, hi = self.means.index(min(self.means)), self.means.index(max(self.means))
            return (f"varies by {self.spread:.0f}% {self.span}, not monotonically (lowest {_rate(self.means[lo])} "
                    f"at {self.xs[lo]:g}, highest {_rate(self.means[hi])} at {self.xs[hi]:g}; "
                    f"last vs first {_ci_text(self.ci)})")
        reps = f" over {self.ci[2]} + {self.ci[3]} repetitions" if self.ci else ""
        return (f"{self.verb} {abs(self.change):.0f}% {self.span} ({_rate(self.means[0])} → {_rate(self.means[-1])}; "
                f"{_ci_text(self.ci)}{reps}; {self.rate_note})")

    @property
    def verb(self):
        return "grows" if self.change > 0 else "falls"


def _describe(sweep, axis):
    """The Trend of one sweep's per-worker (or aggregate) throughput; None with fewer than 2 points."""
    key, _ = _op_metric(sweep)
    raw, means, _errs = sweep.series(key)
    xs = [claims_mod.axis_number(None, x) for x in raw]  # params may be strings ("10")
    if len(xs) < 2 or None in xs:
        return None
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    raw, xs, means = [raw[i] for i in order], [xs[i] for i in order], [means[i] for i in order]
    t = Trend("flat", f"from {xs[0]:g} to {xs[-1]:g} {axis}", claims_mod.spread_pct(means), means, xs)
    # Every sentence carries an interval: flat and varying sweeps give last vs first's too.
    t.ci = _ci(sweep.points[sweep.xs.index(raw[0])], sweep.points[sweep.xs.index(raw[-1])], key)
    if t.spread <= FLAT_PCT:
        return t
    steps = [b - a for a, b in zip(means, means[1:])]
    if not (all(d >= 0 for d in steps) or all(d <= 0 for d in steps)):
        t.kind = "varies"
        return t
    if means[0] == 0:  # a change from nothing has no percentage
        t.kind = "varies"
        return t
    t.kind, t.change = "effect", 100.0 * (means[-1] / means[0] - 1.0)
    unit = _unit(axis, 1)
    if len(xs) == 2:
        t.rate_note = f"{_rate((means[-1] - means[0]) / (xs[-1] - xs[0]))} per {unit} between the two points"
    else:
        _a, b, r2 = claims_mod.linear_fit(xs, means)
        t.rate_note = (f"{_rate(b)} per {unit}, linear fit R² {r2:.2f}" if r2 >= LINEAR_R2
                       else f"not linear in {axis}, R² {r2:.2f}: no per-{unit} rate")
    return t


def _context_prefix(sweep, multi):
    g = sweep.group
    return f"[{g.kernel} on {g.system}] " if multi else ""


def sweep_findings(points, sweeps=None):
    """Findings about throughput along containers and workers, one sentence per scenario and axis.

    ``sweeps``: {axis: [Sweep]} already built (the report's model), or None to build them here."""
    out = []
    contexts = {(p.group.kernel, p.group.system) for p in points}
    if sweeps is None:
        sweeps = sweeps_mod.build_axes(points, AXES)
    for axis in AXES:
        by_group = {}
        for s in sweeps[axis]:
            if len(s.xs) < 2:
                continue
            g = s.group
            by_group.setdefault((g.scenario, g.kernel, g.system, g.placement, g.profile,
                                 dict(s.fixed).get("op")), []).append(s)
        placements = {}
        for key in by_group:
            placements.setdefault(key[0], set()).add(key[3])
        for key, members in by_group.items():
            out += _group_findings(members, axis, len(contexts) > 1, len(placements[key[0]]) > 1)
    return out


def _group_findings(members, axis, multi_context, multi_placement):
    """Sentences for sweeps of one scenario/op/context along ``axis``, merged when they agree."""
    keys = _varying(members)
    trends = [(s, t) for s, t in ((s, _describe(s, axis)) for s in members) if t]
    if not trends:
        return []
    s0 = trends[0][0]
    _, metric = _op_metric(s0)
    placement = f" ({s0.group.placement} placement)" if multi_placement else ""
    head = f"{_context_prefix(s0, multi_context)}{s0.group.scenario}: {metric}{placement}"
    withheld = []
    for s, t in list(trends):
        noisy, total = noisy_share([p for pts in s.points for p in pts])
        if busy(noisy, total):
            trends.remove((s, t))
            where = f" at {_where(s, keys)}" if keys else ""
            withheld.append(Finding("withheld", withheld_text(f"{head}{where} {t.span}", noisy, total)))
    return withheld + _stated(trends, keys, head)


def _stated(trends, keys, head):
    """Sentences for the quiet trends of one group."""
    if not trends:
        return []
    kinds = {(t.kind, t.span, t.verb if t.kind == "effect" else "") for _, t in trends}
    if len(trends) > 1 and len(kinds) == 1:
        kind, span, verb = kinds.pop()
        if kind == "flat":
            detail = "; ".join(f"{t.spread:.1f}% at {_where(s, keys)} (last vs first {_ci_text(t.ci)})"
                               for s, t in trends)
            return [Finding("flat", f"{head} is flat {span} (spread of the means {detail}; "
                                    f"≤ {FLAT_PCT:g}% counts as flat).", max(t.spread for _, t in trends))]
        if kind == "effect":
            sizes = sorted(abs(t.change) for _, t in trends)
            size = f"{sizes[0]:.0f}%" if round(sizes[0]) == round(sizes[-1]) else f"{sizes[0]:.0f}–{sizes[-1]:.0f}%"
            detail = "; ".join(f"{_where(s, keys)}: {_rate(t.means[0])} → {_rate(t.means[-1])}, {t.change:+.1f}% "
                               f"({_ci_text(t.ci)})" for s, t in trends)
            return [Finding("effect", f"{head} {verb} {size} {span} at every measured value of {', '.join(keys)} "
                                      f"({detail}).", sizes[-1])]
    return [Finding(t.kind, f"{head}{' at ' + _where(s, keys) if keys else ''} {t.fragment()}.", t.size)
            for s, t in trends]


def claim_findings(claim_results):
    """Deviations one by one; holds and not-tested counted in one sentence."""
    out = []
    for r in claim_results:
        if r.status == claims_mod.DEVIATES:
            ctx = f" [{r.context}]" if r.context else ""
            out.append(Finding("deviation", f"Deviates from expectation{ctx}: {r.scenario}: {r.fact} — expected "
                                             f"{r.expected}; measured {r.measured}.", math.inf))
    for r in claim_results:  # per-unit rates the claims measured: "1.79 µs/mount"
        if r.status == claims_mod.HOLDS and r.claim.get("kind") == "linear":
            ctx = f" [{r.context}]" if r.context else ""
            out.append(Finding("rate", f"{r.scenario}{ctx}: {r.fact}, as expected: {r.measured}."))
    c = claims_mod.counts(claim_results)
    if claim_results:
        text = (f"Expectations: {c[claims_mod.HOLDS]} of {len(claim_results)} hold, "
                f"{c[claims_mod.DEVIATES]} deviate, {c[claims_mod.NOT_TESTED]} not tested")
        untested = sorted({r.why for r in claim_results if r.status == claims_mod.NOT_TESTED})
        if untested:
            text += " (" + "; ".join(untested[:3]) + ("; …" if len(untested) > 3 else "") + ")"
        out.append(Finding("claims", text + " — see the facts table."))
    return out


def compute(points, claim_results=None, unchecked_why=None, sweeps=None):
    """All findings, ordered: deviations, expectations summary, largest effects, flat, varies.

    ``claim_results`` None: no scenario list; ``unchecked_why`` says why (the list could not be had).
    ``sweeps``: {axis: [Sweep]} from the report's model (model.py), or None to build them from points."""
    sweeps_found = sweep_findings(points, sweeps)
    effects = sorted((f for f in sweeps_found if f.kind == "effect"), key=lambda f: -f.size)
    shown = effects[:MAX_EFFECTS]
    if shown:
        shown[0] = Finding("effect", "Largest effect: " + shown[0].text, shown[0].size)
    rest = len(effects) - len(shown)
    out = claim_findings(claim_results or [])
    out += shown
    if rest > 0:
        out.append(Finding("effect", f"{rest} smaller effect(s) are in the plots and tables below."))
    out += [f for f in sweeps_found if f.kind == "flat"]
    out += [f for f in sweeps_found if f.kind == "varies"]
    out += [f for f in sweeps_found if f.kind == "withheld"]
    if claim_results is None:
        out.append(Finding("claims", f"Expectations not checked: {unchecked_why or 'no scenario list'} "
                                     "(report --list FILE or --mntscale BIN)."))
    if not sweeps_found:
        out.append(Finding("none", "No sweep along containers or workers with two or more measured points: "
                                   "nothing to say about trends."))
    return out


def markdown(findings):
    return "\n".join(["## Findings", ""] + [f"- {f.text}" for f in findings] + [""])
