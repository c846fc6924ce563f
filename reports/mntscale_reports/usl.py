"""Universal Scalability Law fits and the container-density table.

X(N) = λN / (1 + σ(N−1) + κN(N−1)): σ is contention (serialisation, e.g. the
global mount_lock), κ is coherency (cross-CPU cost that grows with pairs, e.g.
seqcount retries and cache-line bouncing). Fitted against workers (classic
USL) and against container count (how much mount-table growth costs).
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq, curve_fit

from . import sweeps as sweeps_mod

THROUGHPUT = "items_per_second"
KAPPA_ZERO = 1e-9  # below this κ the curve has no retrograde region: "no peak"
MIN_FIT_POINTS = 3  # three parameters
DENSITY_THRESHOLDS = (90, 75, 50)
# The model never answers beyond this multiple of the largest measured N: a fit to 1..300
# containers once "predicted" a limit at 8,624 (29x), which nothing measured supports.
MAX_EXTRAPOLATION = 2.0
# A sweep whose means all lie inside this many standard errors of each other (the
# median relative spread of its points, times two for both sides) is flat within noise:
# no fit is shown, because a USL curve through noise invents a peak.
FLAT_NOISE_SIGMAS = 2.0
FLAT_TEXT = "flat: no saturation in the measured range"
# Below this R² the fit does not describe the sweep (a flat, noisy sweep fits R² ≈ 0.3-0.6
# here), so the density table does not extrapolate from it.
MIN_EXTRAPOLATION_R2 = 0.9


def usl(n, lam, sigma, kappa):
    n = np.asarray(n, dtype=float)
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


@dataclass
class UslFit:
    lam: float
    sigma: float
    kappa: float
    r2: float
    n_points: int

    @property
    def peak(self):
        """N* = sqrt((1−σ)/κ); None without a retrograde region, at least 1 (σ ≥ 1: never scales)."""
        if self.kappa < KAPPA_ZERO:
            return None
        return max(1.0, math.sqrt(max(0.0, 1.0 - self.sigma) / self.kappa))

    def predict(self, n):
        return usl(n, self.lam, self.sigma, self.kappa)

    def relative(self, n):
        """Model throughput at n relative to its value at N = 1 (λ cancels)."""
        return float(usl(n, 1.0, self.sigma, self.kappa))


class FitError(Exception):
    """The data cannot support a USL fit; the message says why."""


def fit(xs, ys):
    """Least-squares USL fit with σ, κ ≥ 0; raises FitError on too little or unusable data."""
    xs = np.asarray(xs, dtype=float)
    ys = np.asarray(ys, dtype=float)
    if len(set(xs.tolist())) < MIN_FIT_POINTS:
        raise FitError(f"needs {MIN_FIT_POINTS} distinct N, have {len(set(xs.tolist()))}")
    if np.any(xs <= 0) or np.any(ys <= 0):
        raise FitError("N and throughput must be positive")
    first = int(np.argmin(xs))
    p0 = (ys[first] / xs[first], 0.01, 1e-4)
    try:
        with warnings.catch_warnings():  # parameter covariance is not reported, so its warning is noise
            warnings.simplefilter("ignore")
            params, _ = curve_fit(usl, xs, ys, p0=p0, bounds=([0.0, 0.0, 0.0], [np.inf, np.inf, np.inf]),
                                  maxfev=20000)
    except (RuntimeError, ValueError) as e:
        raise FitError(f"did not converge: {e}") from e
    residual = np.sum((ys - usl(xs, *params)) ** 2)
    total = np.sum((ys - ys.mean()) ** 2)
    r2 = 1.0 - residual / total if total > 0 else 1.0
    return UslFit(float(params[0]), float(params[1]), float(params[2]), float(r2), len(xs))


@dataclass
class SweepFit:
    """A sweep with its fit, or the reason it has none."""

    sweep: object
    fit: UslFit = None
    error: str = None
    flat: bool = False  # flat within noise: no model shown
    max_x: float = None  # largest measured N; the model answers up to MAX_EXTRAPOLATION times it

    def peak_text(self):
        """N* as a table cell, never beyond MAX_EXTRAPOLATION × the largest measured N."""
        peak = self.fit.peak
        if peak is None:
            return "no peak"
        if self.max_x and peak > MAX_EXTRAPOLATION * self.max_x:
            return f"beyond {MAX_EXTRAPOLATION:g}× measured (> {MAX_EXTRAPOLATION * self.max_x:g}): not predicted"
        return f"{peak:.1f}"


def flat_within_noise(means, errs):
    """(flat, spread %, noise band %): the means' spread (max − min) / mean is inside the
    band their own error bars allow (2 × FLAT_NOISE_SIGMAS × median relative error)."""
    mean = sum(means) / len(means)
    if mean <= 0:
        return False, math.inf, 0.0
    spread = 100.0 * (max(means) - min(means)) / mean
    rel = sorted(abs(e) / m for e, m in zip(errs or [0.0] * len(means), means) if m > 0)
    band = 100.0 * 2 * FLAT_NOISE_SIGMAS * (rel[len(rel) // 2] if rel else 0.0)
    return spread <= band, spread, band


def fit_sweep(sweep):
    xs, means, errs = sweep.series(THROUGHPUT)
    sf = SweepFit(sweep)
    if xs:
        sf.max_x = float(max(xs))
    if len(xs) >= 2:
        flat, spread, band = flat_within_noise(means, errs)
        if flat:
            sf.flat = True
            sf.error = f"{FLAT_TEXT} (spread {spread:.1f}% within noise ±{band / 2:.1f}%)"
            return sf
    try:
        sf.fit = fit(xs, means)
    except FitError as e:
        sf.error = str(e)
    return sf


def fit_sweeps(sweeps):
    """USL fits for the sweeps of one axis (sweeps.build's list).

    One-point sweeps are not sweeps along this axis and are left out.
    """
    return [fit_sweep(s) for s in sweeps if len(s.xs) > 1]


def fit_points(points, x_param):
    """USL fits for every sweep along ``x_param`` (``workers`` or ``containers``), from points
    (the `usl` subcommand; the report fits its model's sweeps with fit_sweeps)."""
    return fit_sweeps(sweeps_mod.build(points, x_param))


# --- density -------------------------------------------------------------------------------

@dataclass
class Answer:
    """Container count where relative throughput falls below a threshold, and how we know."""

    containers: float = None
    source: str = "not reached"  # measured | model | not reached
    note: str = ""

    def text(self):
        if self.containers is None:
            return f"not reached{' (' + self.note + ')' if self.note else ''}"
        return f"{self.containers:.1f} ({self.source})"


@dataclass
class DensityRow:
    sweep: object
    baseline: float = None
    baseline_source: str = ""
    answers: dict = field(default_factory=dict)  # threshold % -> Answer
    r2: float = None


def _measured_crossing(xs, rel, threshold):
    """Linear interpolation at the first measured drop below ``threshold``."""
    for (x0, r0), (x1, r1) in zip(zip(xs, rel), zip(xs[1:], rel[1:])):
        if r0 >= threshold > r1:
            return x0 + (r0 - threshold) * (x1 - x0) / (r0 - r1)
    return None


def _model_crossing(model, start, threshold):
    """First N in [start, MAX_EXTRAPOLATION × start] where the model falls below ``threshold``, else None."""
    limit = MAX_EXTRAPOLATION * start
    lo = min(max(start, model.peak or 1.0), limit)
    gap = lambda n: model.relative(n) - threshold  # noqa: E731 - one-line root function
    if gap(lo) < 0:
        return lo
    if gap(limit) >= 0:
        return None
    return brentq(gap, lo, limit)


def _answer(xs, rel, model, threshold, flat=False):
    measured = _measured_crossing(xs, rel, threshold)
    if measured is not None:
        return Answer(measured, "measured")
    if flat:
        return Answer(note=f"up to {xs[-1]:g} measured; {FLAT_TEXT}")
    if model is None:
        return Answer(note=f"up to {xs[-1]:g} measured, no model")
    if model.r2 is None or model.r2 < MIN_EXTRAPOLATION_R2:
        r2 = "undefined" if model.r2 is None else f"{model.r2:.2f}"
        return Answer(note=f"up to {xs[-1]:g} measured; fit too poor to extrapolate (R² {r2})")
    predicted = _model_crossing(model, xs[-1], threshold)
    if predicted is None:
        return Answer(note=f"up to {xs[-1]:g} measured; the model stays above up to "
                           f"{MAX_EXTRAPOLATION * xs[-1]:g} and is not used beyond {MAX_EXTRAPOLATION:g}× measured")
    return Answer(predicted, "model")


def density_row(sweep_fit, thresholds=DENSITY_THRESHOLDS):
    """Answer "above how many containers does throughput fall below X% of one container?".

    Throughput is the aggregate items_per_second at N containers divided by the
    value at one container (measured when the sweep has N = 1, else the model's
    λ). Measured points answer by linear interpolation; beyond the sweep the
    USL model answers, and each answer says which.
    """
    xs, means, _ = sweep_fit.sweep.series(THROUGHPUT)
    model = sweep_fit.fit
    row = DensityRow(sweep_fit.sweep, r2=model.r2 if model else None)
    if xs and xs[0] == 1:
        row.baseline, row.baseline_source = means[0], "measured"
    elif model is not None:  # N = 1 lies below the sweep: interpolation towards 0, not extrapolation
        row.baseline, row.baseline_source = model.lam, "model"
        xs, means = [1] + xs, [model.lam] + means
    else:
        row.answers = {t: Answer(note="no 1-container point and no model") for t in thresholds}
        return row
    if not row.baseline > 0:
        row.answers = {t: Answer(note="1-container throughput is zero") for t in thresholds}
        return row
    rel = [m / row.baseline for m in means]
    row.answers = {t: _answer(xs, rel, model, t / 100.0, sweep_fit.flat) for t in thresholds}
    return row


def density_table(points):
    """Density rows for every sweep along containers (layers and binds are in each sweep's fixed params)."""
    return [density_row(f) for f in fit_points(points, "containers")]
