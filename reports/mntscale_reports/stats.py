"""Small statistics shared by plots, tables and the A/B comparison.

Kept free of plotting and I/O so ci/ scripts can import it cheaply.
"""

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

BOOTSTRAP_RESAMPLES = 10000


@dataclass
class Summary:
    """Mean of a metric over repetitions and the spread used for error bars."""

    mean: float
    err: float
    n: int
    source: str  # "repetitions" | "windows" | "single"


def summarize(points, key):
    """Pool ``key`` over the repetitions of ``points``.

    The error bar is the std over repetitions; with a single repetition it is
    the relative spread of its measurement windows applied to the mean, so a
    per-worker metric gets a spread in its own unit.
    """
    values = [v for p in points for v in p.values(key)]
    if not values:
        return None
    mean = float(np.mean(values))
    if len(values) >= 2:
        return Summary(mean, float(np.std(values, ddof=1)), len(values), "repetitions")
    windows = [w for p in points for w in p.windows()]
    if len(windows) >= 2 and np.mean(windows) > 0:
        rel = float(np.std(windows, ddof=1) / np.mean(windows))
        return Summary(mean, abs(mean) * rel, 1, "windows")
    return Summary(mean, 0.0, 1, "single")


def cv(samples):
    """Coefficient of variation (sample std / mean); inf when undefined."""
    a = np.asarray(samples, dtype=float)
    if a.size < 2 or a.mean() == 0:
        return float("inf")
    return float(a.std(ddof=1) / abs(a.mean()))


def pct_change(a, b):
    """Change of mean(b) relative to mean(a), in percent."""
    return (float(np.mean(b)) / float(np.mean(a)) - 1.0) * 100.0


def seed_for(key):
    """A stable per-point seed, so a point's CI does not depend on which others are compared."""
    return zlib.crc32(key.encode("utf-8"))


def _pct_change_of_means(a, b, axis=-1):
    """pct_change along ``axis``: the statistic the bootstrap resamples (vectorized for scipy)."""
    return (np.mean(b, axis=axis) / np.mean(a, axis=axis) - 1.0) * 100.0


def bootstrap_pct_ci(a, b, seed, confidence=0.95, resamples=BOOTSTRAP_RESAMPLES):
    """Percentile bootstrap CI of pct_change(a, b), resampling a and b independently.

    scipy.stats.bootstrap (paired=False, method "percentile") with a Generator seeded by
    ``seed``, so the interval is the same on every run. It draws each sample's indices as
    Generator.integers(0, n, (resamples, n)), a's then b's, which is what the hand-written
    rng.choice resampling drew: the intervals are identical to it, not merely close.
    Zero means are not guarded: as before, a resample of zeros gives inf/nan and the
    percentile says so (compare and machines pass positive samples only).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    if min(a.size, b.size) < 2:
        # scipy.stats.bootstrap refuses a sample of fewer than two observations; every caller
        # asks for two or more, but a one-value side resamples to itself and is kept
        # answering (and an empty one raising) as before.
        ma = rng.choice(a, size=(resamples, a.size), replace=True).mean(axis=1)
        mb = rng.choice(b, size=(resamples, b.size), replace=True).mean(axis=1)
        tail = (1.0 - confidence) / 2.0 * 100.0
        lo, hi = np.percentile((mb / ma - 1.0) * 100.0, [tail, 100.0 - tail])
        return float(lo), float(hi)
    ci = sps.bootstrap((a, b), _pct_change_of_means, vectorized=True, paired=False, confidence_level=confidence,
                       n_resamples=resamples, method="percentile", random_state=rng).confidence_interval
    return float(ci.low), float(ci.high)


def mannwhitney_p(a, b):
    """Two-sided Mann-Whitney U p-value; 1.0 when the test is undefined (all values tied)."""
    p = sps.mannwhitneyu(a, b, alternative="two-sided").pvalue
    return 1.0 if np.isnan(p) else float(p)


# Share of noisy repetitions at or above which a sentence (finding, claim, machines ratio) is
# withheld. Half, not "most": a trend half of whose repetitions measured a neighbour as well
# cannot be told from it.
NOISY_WITHHOLD = 0.5


def noisy_share(points):
    """(noisy repetitions, repetitions) behind ``points`` (load.Point or anything with .reps)."""
    reps = [r for p in points for r in getattr(p, "reps", None) or []]
    return sum(1 for r in reps if isinstance(r, dict) and r.get("noisy")), len(reps)


def busy(noisy, total):
    """True when a sentence drawn from these repetitions must be withheld."""
    return total > 0 and noisy >= NOISY_WITHHOLD * total


def withheld_text(subject, noisy, total):
    return f"Not stated: {subject}: measured on a busy machine ({noisy} of {total} repetitions noisy)."


def mean_ci_halfwidth_pct(samples, confidence=0.95):
    """Half-width of the t interval of the mean, in percent of the mean; None below 2 samples."""
    a = np.asarray(samples, dtype=float)
    if a.size < 2 or a.mean() == 0:
        return None
    t = sps.t.ppf(0.5 + confidence / 2, a.size - 1)
    return float(100.0 * t * a.std(ddof=1) / np.sqrt(a.size) / abs(a.mean()))


def resolution_text(points, key="items_per_second"):
    """"±0.3% at 95% for most points": the median half-width of each point's mean throughput
    (over its invocations, or its repetitions when a file is one invocation); None without any."""
    half = []
    for p in points:
        inv = p.invocation_means(key)
        h = mean_ci_halfwidth_pct(inv if len(inv) >= 2 else p.values(key))
        if h is not None:
            half.append(h)
    if not half:
        return None
    half.sort()
    return f"±{half[len(half) // 2]:.1f}% at 95% for most points (median over {len(half)}; widest ±{half[-1]:.1f}%)"


def bh_adjust(pvalues):
    """Benjamini-Hochberg adjusted p-values (q), in the input's order.

    Controls the false discovery rate over a comparison's points; when every point is
    unchanged (an A/A pair) that is the chance of flagging any point at all.
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, pvalues[i] * m / rank)
        q[i] = min(1.0, running)
    return q
