"""A/B comparison of two sets of result files: per-point change, CI, significance, verdict.

The sampling unit is the **invocation** (one `mntscale run`, or one invocation inside a
merged nightly file), never the repetition. Repetitions of one invocation share its farm,
caches and host state; on real runs the drift between invocations of the same build was
larger than the spread inside one, so repetitions treated as independent samples turned
an A/A run into a significant −8.7 % "worse". Each invocation contributes the mean of its
repetitions; a point needs ``min_invocations`` per side for any verdict.

An invocation whose repetitions mntscale flagged "noisy" (other tasks or the hypervisor took
the worker CPUs while it measured) is not evidence: it is left out of the samples. On a
2-vCPU VM with one CPU-bound neighbour a 3 % slowdown came out "better by +31 %" from noisy
invocations, because the two sides were scheduled differently; the difference was the
machine's. A point without ``min_invocations`` quiet invocations per side is "inconclusive:
measured on a busy machine (k of n invocations noisy)".

Importable by ci/ scripts: ``compare_results(results_a, results_b, Options())``
returns a ``Comparison``; ``gate_failures`` and ``to_json`` give what a
regression gate needs. Lower throughput is worse.
"""

import json
import math
from dataclasses import asdict, dataclass, field

from . import stats

THROUGHPUT = "items_per_second"
WORSE, BETTER, NO_CHANGE, INCONCLUSIVE = "worse", "better", "no change", "inconclusive"


@dataclass
class Options:
    alpha: float = 0.05
    threshold: float = 5.0  # percent drop of a `worse` point that fails the gate
    # With 3 against 3 the two-sided Mann-Whitney test cannot go below p = 0.1.
    min_invocations: int = 4
    max_cv: float = 0.10  # CV of the invocation means on both sides must be below this for "no change"
    min_effect: float = 1.0  # percent; smaller significant changes are not practical changes
    # "no change" also needs the CI inside ±equivalence percent: a change that big is ruled
    # out. None means the gate's threshold.
    equivalence: float = None
    # Count noisy invocations as samples. Only for a perturbation made on purpose outside
    # mntscale (tests/ci's mount_lock writers are such a neighbour): never a kernel verdict.
    keep_noisy: bool = False

    def __post_init__(self):
        """Refuse settings that would silently change verdicts (a NaN threshold passes every gate)."""
        def finite(name, low, high, low_open=True):
            v = getattr(self, name)
            above = v > low if low_open else v >= low
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and above and v < high):
                raise ValueError(f"compare option {name}={v!r} is outside {'(' if low_open else '['}{low:g}, {high:g})")
        finite("alpha", 0, 1)
        for name in ("threshold", "max_cv"):
            finite(name, 0, math.inf)
        finite("min_effect", 0, math.inf, low_open=False)
        if self.equivalence is not None:
            finite("equivalence", 0, math.inf)
        if isinstance(self.min_invocations, bool) or not isinstance(self.min_invocations, int) \
                or self.min_invocations < 1:
            raise ValueError(f"compare option min_invocations={self.min_invocations!r} must be an integer >= 1")

    @property
    def margin(self):
        return self.threshold if self.equivalence is None else self.equivalence


@dataclass
class PointResult:
    run_name: str
    params: dict
    n_a: int  # independent quiet invocations per side (the samples)
    n_b: int
    reps_a: int  # repetitions behind them, for the record
    reps_b: int
    mean_a: float
    mean_b: float
    change_pct: float  # None when the baseline throughput is zero
    ci_low: float = None
    ci_high: float = None
    p_value: float = None  # this point's own Mann-Whitney p
    # Benjamini-Hochberg adjusted over the comparison's points: what the verdict uses. With 13
    # points at alpha 0.05, raw p-values flag about one point of an A/A pair by chance.
    q_value: float = None
    cv_a: float = None  # of the invocation means
    cv_b: float = None
    # Repetitions flagged "noisy" by mntscale (other tasks used the worker CPUs while it measured).
    noisy_a: int = 0
    noisy_b: int = 0
    # Invocations left out because a repetition in them was noisy; all = quiet + noisy.
    noisy_inv_a: int = 0
    noisy_inv_b: int = 0
    verdict: str = INCONCLUSIVE
    reason: str = ""
    fails_gate: bool = False

    @property
    def half_width(self):
        """Half the 95% CI's width, in percent: what this point can resolve; None without a CI."""
        return None if self.ci_low is None else (self.ci_high - self.ci_low) / 2


@dataclass
class Comparison:
    options: Options
    points: list = field(default_factory=list)
    only_a: list = field(default_factory=list)  # {"run_name", "reason"}
    only_b: list = field(default_factory=list)

    def counts(self):
        out = {v: 0 for v in (WORSE, BETTER, NO_CHANGE, INCONCLUSIVE)}
        for p in self.points:
            out[p.verdict] += 1
        return out

    @property
    def gate_failures(self):
        return [p for p in self.points if p.fails_gate]

    @property
    def undecided(self):
        """No point got a verdict (all inconclusive): a gate that "passes" this has checked nothing."""
        return bool(self.points) and all(p.verdict == INCONCLUSIVE for p in self.points)

    def noise(self):
        """(noisy invocations, all invocations) over both sides of every point."""
        noisy = sum(p.noisy_inv_a + p.noisy_inv_b for p in self.points)
        return noisy, noisy + sum(p.n_a + p.n_b for p in self.points)

    @property
    def status(self):
        return "FAIL" if self.gate_failures else "NO VERDICT" if self.undecided else "PASS"


def point_key(point):
    """Points match on run_name and the full params, never on position in the file."""
    return point.run_name, json.dumps(point.params, sort_keys=True)


def pool_by_key(results):
    pooled = {}
    for r in results:
        for p in r.points:
            pooled.setdefault(point_key(p), []).append(p)
    return pooled


def invocation_samples(points):
    """One throughput per independent invocation, over all files of one side."""
    return [v for p in points for v in p.invocation_means(THROUGHPUT)]


def quiet_samples(points):
    """(quiet invocation means, noisy invocation count) over all files of one side."""
    inv = [x for p in points for x in p.invocations(THROUGHPUT)]
    return [m for m, noisy in inv if not noisy], sum(1 for _, noisy in inv if noisy)


def busy_reason(r):
    """The inconclusive reason of a point that lacks quiet invocations because some were noisy."""
    noisy = r.noisy_inv_a + r.noisy_inv_b
    return (f"measured on a busy machine ({noisy} of {noisy + r.n_a + r.n_b} invocations noisy: "
            f"A {r.noisy_inv_a}/{r.noisy_inv_a + r.n_a}, B {r.noisy_inv_b}/{r.noisy_inv_b + r.n_b}); "
            "noisy invocations are not evidence")


def _verdict(r, opts):
    """Fill verdict and reason; "no change" only on quiet data whose CI rules out a change of the margin."""
    if min(r.n_a, r.n_b) < opts.min_invocations and (r.noisy_inv_a or r.noisy_inv_b):
        return INCONCLUSIVE, (f"{busy_reason(r)}; a verdict needs {opts.min_invocations} quiet "
                              f"invocations per side, has {r.n_a}/{r.n_b}")
    if min(r.n_a, r.n_b) < opts.min_invocations:
        return INCONCLUSIVE, (f"{r.n_a}/{r.n_b} invocations: a verdict needs {opts.min_invocations} independent "
                              f"invocations per side (repetitions inside one share its drift)")
    if min(r.n_a, r.n_b) < 2:  # --min-invocations 1: one sample has no spread to test against
        return INCONCLUSIVE, f"{r.n_a}/{r.n_b} invocations: a test needs 2 per side"
    if r.q_value is None:  # no test was possible: some invocation measured zero throughput
        return INCONCLUSIVE, "zero throughput in an invocation"
    ci_excludes_zero = r.ci_low > 0 or r.ci_high < 0
    significant = r.q_value < opts.alpha and ci_excludes_zero
    if significant and abs(r.change_pct) >= opts.min_effect:
        return (WORSE if r.change_pct < 0 else BETTER), f"q={r.q_value:.3g} (p={r.p_value:.3g}), CI excludes 0"
    noisiest = max(r.cv_a, r.cv_b)
    if noisiest >= opts.max_cv:
        return INCONCLUSIVE, f"too noisy to rule out a change (CV of invocations {100 * noisiest:.1f}%)"
    if r.ci_low <= -opts.margin or r.ci_high >= opts.margin:
        return INCONCLUSIVE, (f"CI [{r.ci_low:+.1f}, {r.ci_high:+.1f}]% reaches ±{opts.margin:g}%: "
                              "a change of that size is not ruled out")
    if significant:
        return NO_CHANGE, f"significant but below the {opts.min_effect:g}% practical floor"
    why = "not significant" if r.q_value >= opts.alpha else "CI includes 0"
    return NO_CHANGE, f"{why}; CI within ±{opts.margin:g}%"


def noisy_reps(points):
    """Repetitions measured while other tasks used their worker CPUs (the entry's "noisy" flag)."""
    return sum(p.noisy_reps() for p in points)


def _mean(quiet, points):
    """Mean of the quiet samples; of all invocations (for the table only) when none was quiet."""
    values = quiet or invocation_samples(points)
    return sum(values) / len(values)


def compare_point(key, points_a, points_b, opts):
    (a, noisy_a), (b, noisy_b) = quiet_samples(points_a), quiet_samples(points_b)
    if opts.keep_noisy:
        (a, noisy_a), (b, noisy_b) = (invocation_samples(points_a), 0), (invocation_samples(points_b), 0)
    mean_a, mean_b = _mean(a, points_a), _mean(b, points_b)
    r = PointResult(run_name=key[0], params=points_a[0].params, n_a=len(a), n_b=len(b),
                    reps_a=sum(len(p.values(THROUGHPUT)) for p in points_a),
                    reps_b=sum(len(p.values(THROUGHPUT)) for p in points_b),
                    mean_a=mean_a, mean_b=mean_b,
                    noisy_a=noisy_reps(points_a), noisy_b=noisy_reps(points_b),
                    noisy_inv_a=noisy_a, noisy_inv_b=noisy_b,
                    change_pct=stats.pct_change(a, b) if a and b and mean_a > 0 else None)
    if min(len(a), len(b)) >= 2 and min(a + b) > 0:
        seed = stats.seed_for(key[0] + key[1])
        r.ci_low, r.ci_high = stats.bootstrap_pct_ci(a, b, seed)
        r.p_value = stats.mannwhitney_p(a, b)
        r.cv_a, r.cv_b = stats.cv(a), stats.cv(b)
    return r


def decide(points, opts):
    """Adjust the p-values of the points that can get a verdict (BH), then give each its verdict."""
    eligible = [r for r in points if r.p_value is not None and min(r.n_a, r.n_b) >= opts.min_invocations]
    for r, q in zip(eligible, stats.bh_adjust([r.p_value for r in eligible])):
        r.q_value = q
    for r in points:
        r.verdict, r.reason = _verdict(r, opts)
        r.fails_gate = r.verdict == WORSE and -r.change_pct >= opts.threshold
    return points


def _unmatched(keys, pooled_points, other_results):
    """Points present on one side only, with the other side's skip reason when it has one."""
    skips = {s.name: s.reason for r in other_results for s in r.skipped}
    return [{"run_name": k[0], "params": pooled_points[k][0].params,
             "reason": skips.get(k[0], "not measured on the other side")} for k in keys]


def compare_results(results_a, results_b, opts=None):
    """Compare every point measured in both A (baseline) and B (candidate)."""
    opts = opts or Options()
    pa, pb = pool_by_key(results_a), pool_by_key(results_b)
    both = [k for k in pa if k in pb]
    return Comparison(
        options=opts,
        points=decide([compare_point(k, pa[k], pb[k], opts) for k in sorted(both)], opts),
        only_a=_unmatched(sorted(k for k in pa if k not in pb), pa, results_b),
        only_b=_unmatched(sorted(k for k in pb if k not in pa), pb, results_a),
    )


def to_json(comparison, files_a=(), files_b=()):
    return {
        "schema": "mntscale-compare", "schema_version": 2, "sampling_unit": "invocation",
        "baseline": list(files_a), "candidate": list(files_b),
        "options": asdict(comparison.options),
        "counts": comparison.counts(),
        "gate_failed": bool(comparison.gate_failures),
        "status": comparison.status,
        "noisy_invocations": comparison.noise()[0], "invocations": comparison.noise()[1],
        "resolution": resolution_reached(comparison),
        "points": [asdict(p) for p in comparison.points],
        "only_baseline": comparison.only_a, "only_candidate": comparison.only_b,
    }


# --- markdown ------------------------------------------------------------------------------

def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


ROW_HEADERS = ["point", "A ops/s", "B ops/s", "change", "95% CI", "q (p)", "invocations A/B (reps)", "verdict", "why"]
ROW_ALIGN = ["left", "right", "right", "right", "left", "right", "left", "left", "left"]


def _row(p):
    ci = "—" if p.ci_low is None else f"[{p.ci_low:+.2f}, {p.ci_high:+.2f}]"
    return [f"`{p.run_name}`", f"{p.mean_a:,.0f}", f"{p.mean_b:,.0f}", f"{_fmt(p.change_pct, '+.2f')}%", ci,
            f"{_fmt(p.q_value, '.3g')} ({_fmt(p.p_value, '.3g')})", f"{p.n_a}/{p.n_b} ({p.reps_a}/{p.reps_b})",
            f"**{p.verdict}**", f"{p.reason}{_noisy_note(p)}"]


def _noisy_note(p):
    if not (p.noisy_a or p.noisy_b):
        return ""
    return (f"; ⚠ noisy: {p.noisy_a}/{p.reps_a} A and {p.noisy_b}/{p.reps_b} B repetitions measured "
            f"while other tasks used the worker CPUs ({p.noisy_inv_a} A and {p.noisy_inv_b} B invocations "
            "left out)")


def headline(comparison):
    c = comparison.counts()
    status = comparison.status
    if status == "NO VERDICT":
        status += " (no point decided: nothing was checked; see the reasons and rerun with more invocations)"
    return (f"**{status}**: {c[WORSE]} worse, {c[BETTER]} better, {c[NO_CHANGE]} no change, "
            f"{c[INCONCLUSIVE]} inconclusive (gate: worse by ≥ {comparison.options.threshold:g}%; "
            f"samples are quiet invocations, ≥ {comparison.options.min_invocations} per side for a verdict; "
            f"{noise_text(comparison)})")


def noise_text(comparison):
    """"3 of 48 invocations (6%) noisy, left out": the machine's share next to the gate."""
    noisy, total = comparison.noise()
    share = f" ({100 * noisy / total:.0f}%)" if total else ""
    return f"{noisy} of {total} invocations{share} noisy, left out"


def resolution_reached(comparison):
    """"±0.3% at 95% for most points (median CI half-width, 12 quiet invocations per side)", or None."""
    half = sorted(p.half_width for p in comparison.points if p.half_width is not None)
    if not half:
        return None
    n = sorted(min(p.n_a, p.n_b) for p in comparison.points if p.half_width is not None)[len(half) // 2]
    return (f"±{half[len(half) // 2]:.1f}% at 95% for most points (median CI half-width; widest "
            f"±{half[-1]:.1f}%; {n} quiet invocations per side)")


def resolution(comparison):
    """What these samples can resolve: the median CI half-width, and the invocations per side
    that would bring it inside the "no change" margin (half-width scales as 1/sqrt(n)).
    None when no point has a CI."""
    half = sorted((p.ci_high - p.ci_low) / 2 for p in comparison.points if p.ci_low is not None)
    if not half:
        return None
    median = half[len(half) // 2]
    n = sorted(min(p.n_a, p.n_b) for p in comparison.points if p.ci_low is not None)[len(half) // 2]
    margin = comparison.options.margin
    text = f"Resolution: median 95% CI half-width ±{median:.1f}% with {n} invocations per side"
    if median >= margin:
        needed = math.ceil(n * (median / margin) ** 2)
        text += (f"; ruling out a ±{margin:g}% change needs about {needed} invocations per side "
                 "on this machine, or a quieter one")
    return text + "."


def to_markdown(comparison, only_changes=False):
    """Markdown for CI comments; ``only_changes`` keeps worse/better/inconclusive rows."""
    from . import tables  # here: tables pulls in matplotlib (plots.py); compare stays light for ci/
    lines = ["# mntscale compare: B (candidate) vs A (baseline)", "", headline(comparison), ""]
    reached = resolution_reached(comparison)
    if reached:
        lines += [f"Resolution reached: {reached}.", ""]
    res = resolution(comparison)
    if res:
        lines += [res, ""]
    rows = [p for p in comparison.points if not only_changes or p.verdict != NO_CHANGE]
    if rows:
        lines.append(tables.pipe_table(ROW_HEADERS, [_row(p) for p in rows], align=ROW_ALIGN))
        lines.append("")
    for title, items in (("Only in A", comparison.only_a), ("Only in B", comparison.only_b)):
        if items:
            lines += [f"**{title}:** " + "; ".join(f"`{u['run_name']}` ({u['reason']})" for u in items), ""]
    return "\n".join(lines)
