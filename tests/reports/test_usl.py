"""USL fitting and the density table."""

import numpy as np
import pytest

from mntscale_reports import usl

SIGMA, KAPPA, LAM = 0.08, 0.0015, 1.0e6


def _synthetic(noise, seed=7):
    n = np.array([1, 2, 4, 8, 12, 16, 24, 32, 48, 64], dtype=float)
    rng = np.random.default_rng(seed)
    return n, usl.usl(n, LAM, SIGMA, KAPPA) * (1.0 + noise * rng.standard_normal(n.size))


@pytest.mark.parametrize("noise", [0.0, 0.005])
def test_fit_recovers_sigma_and_kappa_within_10_percent(noise):
    fit = usl.fit(*_synthetic(noise))
    assert fit.sigma == pytest.approx(SIGMA, rel=0.10)
    assert fit.kappa == pytest.approx(KAPPA, rel=0.10)
    assert fit.lam == pytest.approx(LAM, rel=0.05)
    assert fit.r2 > 0.99
    assert fit.peak == pytest.approx(np.sqrt((1 - SIGMA) / KAPPA), rel=0.10)


def test_no_peak_without_coherency_cost():
    n = np.array([1, 2, 4, 8, 16], dtype=float)
    fit = usl.fit(n, usl.usl(n, 100.0, 0.2, 0.0))
    assert fit.peak is None


def test_too_few_points_is_a_fit_error():
    with pytest.raises(usl.FitError, match="needs 3 distinct N"):
        usl.fit([1, 2], [10.0, 18.0])


class _Sweep:
    """The one method fit_sweep and density_row read: series() -> (xs, means, errs)."""

    def __init__(self, xs, ys, rel_err=0.0):
        self.xs, self.ys, self.errs = list(xs), list(ys), [rel_err * y for y in ys]

    def series(self, _key):
        return self.xs, self.ys, self.errs


def test_density_crossings_measured_then_model():
    """Pure decline 1/(1+κ(N−1)) with κ=0.01: 90% at N≈12.1, 75% at 34.3, 50% at 101 (model, < 2 × 60)."""
    class Sweep:  # the two attributes density_row reads
        xs = [1, 2, 5, 10, 20, 60]

        def series(self, _key):
            return self.xs, [float(usl.usl(x, 1000.0, 1.0, 0.01)) for x in self.xs], None

    sweep = Sweep()
    xs, ys, _ = sweep.series(None)
    row = usl.density_row(usl.SweepFit(sweep, fit=usl.fit(xs, ys)))
    assert row.baseline_source == "measured"
    assert row.answers[90].source == "measured" and 10 < row.answers[90].containers < 20
    assert row.answers[75].source == "measured" and 20 < row.answers[75].containers < 50
    assert row.answers[50].source == "model" and row.answers[50].containers == pytest.approx(101, rel=0.02)


def test_density_does_not_extrapolate_a_poor_fit():
    """A flat sweep with noise (R² well below 0.9) is answered from measured points only."""
    class Sweep:
        xs = [1, 10, 100, 300]

        def series(self, _key):
            return self.xs, [558e3, 568e3, 598e3, 527e3], None  # a real 2-worker path_walk sweep

    sweep = Sweep()
    fit = usl.fit(*sweep.series(None)[:2])
    assert fit.r2 < usl.MIN_EXTRAPOLATION_R2
    row = usl.density_row(usl.SweepFit(sweep, fit=fit))
    for answer in row.answers.values():
        assert answer.containers is None and "too poor to extrapolate" in answer.note


def _decline(xs):
    """Written out, not usl(): 1000 / (1 + 0.002 (N − 1)). 90% at N = 56.6, 75% at 167.7, 50% at 501."""
    return [1000.0 / (1.0 + 0.002 * (n - 1)) for n in xs]


def test_model_never_answers_beyond_twice_the_largest_measured_n():
    xs = [1, 10, 30, 100]
    sf = usl.fit_sweep(_Sweep(xs, _decline(xs), rel_err=0.001))
    assert sf.fit is not None and sf.fit.r2 > 0.99 and sf.max_x == 100
    row = usl.density_row(sf)
    assert row.answers[90].source == "measured" and row.answers[90].containers == pytest.approx(56.6, rel=0.05)
    assert row.answers[75].source == "model" and row.answers[75].containers == pytest.approx(167.7, rel=0.05)
    assert row.answers[75].containers <= 200
    fifty = row.answers[50]  # the true crossing, 501, lies 5× beyond the sweep: refused
    assert fifty.containers is None and "not used beyond 2× measured" in fifty.note


def test_peak_beyond_twice_measured_is_not_shown():
    """X(N) = N / (1 + 0.05 (N − 1) + 0.0001 N (N − 1)) peaks at N* = sqrt(0.95 / 0.0001) ≈ 97."""
    xs = [1, 2, 4, 8, 16]
    ys = [n / (1.0 + 0.05 * (n - 1) + 0.0001 * n * (n - 1)) for n in xs]
    sf = usl.fit_sweep(_Sweep(xs, ys, rel_err=0.001))
    assert sf.fit.peak == pytest.approx(97.5, rel=0.1)
    assert "not predicted" in sf.peak_text() and "97" not in sf.peak_text()
    wide = usl.fit_sweep(_Sweep(xs + [64], ys + [64 / (1.0 + 0.05 * 63 + 0.0001 * 64 * 63)], rel_err=0.001))
    assert wide.peak_text() == f"{wide.fit.peak:.1f}"


def test_flat_sweep_gets_no_model():
    """1,10,100,300 containers at 1 M ops/s ± 1% alternating, 1% error bars: flat within noise."""
    xs = [1, 10, 100, 300]
    ys = [1.0e6 * (1.0 + 0.01 * (-1) ** i) for i in range(len(xs))]
    sf = usl.fit_sweep(_Sweep(xs, ys, rel_err=0.01))
    assert sf.fit is None and sf.flat and sf.error.startswith(usl.FLAT_TEXT)
    row = usl.density_row(sf)
    assert all(a.containers is None and usl.FLAT_TEXT in a.note for a in row.answers.values())
    # the same means with error bars ten times smaller are not flat within noise
    assert usl.fit_sweep(_Sweep(xs, ys, rel_err=0.001)).flat is False
