"""A/B comparison of two sets of result files: per-point change, CI, significance, verdict.

Importable by ci/ scripts: ``compare_results(results_a, results_b, Options())``
returns a ``Comparison``; ``gate_failures`` and ``to_json`` give what a
regression gate needs. Lower throughput is worse.
"""

import json
from dataclasses import asdict, dataclass, field

from . import stats

THROUGHPUT = "items_per_second"
WORSE, BETTER, NO_CHANGE, INCONCLUSIVE = "worse", "better", "no change", "inconclusive"


@dataclass
class Options:
    alpha: float = 0.05
    threshold: float = 5.0  # percent drop of a `worse` point that fails the gate
    min_reps: int = 3
    max_cv: float = 0.10  # both samples must be this quiet before we claim "no change"
    min_effect: float = 1.0  # percent; smaller significant changes are not practical changes


@dataclass
class PointResult:
    run_name: str
    params: dict
    sample_source: str  # repetitions | windows | insufficient
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    change_pct: float  # None when the baseline throughput is zero
    ci_low: float = None
    ci_high: float = None
    p_value: float = None
    cv_a: float = None
    cv_b: float = None
    verdict: str = INCONCLUSIVE
    reason: str = ""
    fails_gate: bool = False


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


def point_key(point):
    """Points match on run_name and the full params, never on position in the file."""
    return point.run_name, json.dumps(point.params, sort_keys=True)


def pool_by_key(results):
    pooled = {}
    for r in results:
        for p in r.points:
            pooled.setdefault(point_key(p), []).append(p)
    return pooled


def choose_samples(points_a, points_b, min_reps):
    """Per-repetition throughputs when both sides have ``min_reps``, else windows when both have enough.

    Both sides use the same source: window values scatter more than
    repetition means, so mixing the two would bias the test.
    """
    reps_a = [v for p in points_a for v in p.values(THROUGHPUT)]
    reps_b = [v for p in points_b for v in p.values(THROUGHPUT)]
    if min(len(reps_a), len(reps_b)) >= min_reps:
        return reps_a, reps_b, "repetitions"
    win_a = [w for p in points_a for w in p.windows()]
    win_b = [w for p in points_b for w in p.windows()]
    if min(len(win_a), len(win_b)) >= min_reps:
        return win_a, win_b, "windows"
    return reps_a, reps_b, "insufficient"


def _verdict(r, opts):
    """Fill verdict and reason; "no change" only on quiet data (CV below max_cv on both sides)."""
    if r.sample_source == "insufficient":
        return INCONCLUSIVE, f"fewer than {opts.min_reps} positive repetitions or windows per side"
    ci_excludes_zero = r.ci_low > 0 or r.ci_high < 0
    significant = r.p_value < opts.alpha and ci_excludes_zero
    if significant and abs(r.change_pct) >= opts.min_effect:
        return (WORSE if r.change_pct < 0 else BETTER), f"p={r.p_value:.3g}, CI excludes 0"
    quiet = max(r.cv_a, r.cv_b) < opts.max_cv
    if not quiet:
        return INCONCLUSIVE, f"too noisy to rule out a change (CV {100 * max(r.cv_a, r.cv_b):.1f}%)"
    if significant:
        return NO_CHANGE, f"significant but below the {opts.min_effect:g}% practical floor"
    return NO_CHANGE, "not significant" if r.p_value >= opts.alpha else "CI includes 0"


def compare_point(key, points_a, points_b, opts):
    a, b, source = choose_samples(points_a, points_b, opts.min_reps)
    if min(a + b) <= 0:  # a change relative to zero throughput means nothing
        source = "insufficient"
    r = PointResult(run_name=key[0], params=points_a[0].params, sample_source=source, n_a=len(a), n_b=len(b),
                    mean_a=sum(a) / len(a), mean_b=sum(b) / len(b),
                    change_pct=stats.pct_change(a, b) if sum(a) > 0 else None)
    if source != "insufficient":
        seed = stats.seed_for(key[0] + key[1])
        r.ci_low, r.ci_high = stats.bootstrap_pct_ci(a, b, seed)
        r.p_value = stats.mannwhitney_p(a, b)
        r.cv_a, r.cv_b = stats.cv(a), stats.cv(b)
    r.verdict, r.reason = _verdict(r, opts)
    r.fails_gate = r.verdict == WORSE and -r.change_pct >= opts.threshold
    return r


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
        points=[compare_point(k, pa[k], pb[k], opts) for k in sorted(both)],
        only_a=_unmatched(sorted(k for k in pa if k not in pb), pa, results_b),
        only_b=_unmatched(sorted(k for k in pb if k not in pa), pb, results_a),
    )


def to_json(comparison, files_a=(), files_b=()):
    return {
        "schema": "mntscale-compare", "schema_version": 1,
        "baseline": list(files_a), "candidate": list(files_b),
        "options": asdict(comparison.options),
        "counts": comparison.counts(),
        "gate_failed": bool(comparison.gate_failures),
        "points": [asdict(p) for p in comparison.points],
        "only_baseline": comparison.only_a, "only_candidate": comparison.only_b,
    }


# --- markdown ------------------------------------------------------------------------------

def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def _row(p):
    ci = "—" if p.ci_low is None else f"[{p.ci_low:+.2f}, {p.ci_high:+.2f}]"
    return (f"| `{p.run_name}` | {p.mean_a:,.0f} | {p.mean_b:,.0f} | {_fmt(p.change_pct, '+.2f')}% | {ci} | "
            f"{_fmt(p.p_value, '.3g')} | {p.sample_source} ({p.n_a}/{p.n_b}) | **{p.verdict}** |")


def headline(comparison):
    c = comparison.counts()
    status = "FAIL" if comparison.gate_failures else "PASS"
    return (f"**{status}**: {c[WORSE]} worse, {c[BETTER]} better, {c[NO_CHANGE]} no change, "
            f"{c[INCONCLUSIVE]} inconclusive (gate: worse by ≥ {comparison.options.threshold:g}%)")


def to_markdown(comparison, only_changes=False):
    """Markdown for CI comments; ``only_changes`` keeps worse/better/inconclusive rows."""
    lines = ["# mntscale compare: B (candidate) vs A (baseline)", "", headline(comparison), ""]
    rows = [p for p in comparison.points if not only_changes or p.verdict != NO_CHANGE]
    if rows:
        lines += ["| point | A ops/s | B ops/s | change | 95% CI | p (MWU) | samples (A/B) | verdict |",
                  "|---|---:|---:|---:|---|---:|---|---|"]
        lines += [_row(p) for p in rows]
        lines.append("")
    for title, items in (("Only in A", comparison.only_a), ("Only in B", comparison.only_b)):
        if items:
            lines += [f"**{title}:** " + "; ".join(f"`{u['run_name']}` ({u['reason']})" for u in items), ""]
    return "\n".join(lines)
