"""USL fitting and the density table."""

import numpy as np
import pytest

from mntscale_reports import usl

SIGMA, KAPPA, LAM = 0.08, 0.0015, 1.0e6


def gunther(n, lam, sigma, kappa):
    """Gunther's Universal Scalability Law, written out here rather than taken from
    the module under test: X(N) = λN / (1 + σ(N−1) + κN(N−1))."""
    n = np.asarray(n, dtype=float)
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


def _synthetic(noise, seed=7):
    n = np.array([1, 2, 4, 8, 12, 16, 24, 32, 48, 64], dtype=float)
    rng = np.random.default_rng(seed)
    return n, gunther(n, LAM, SIGMA, KAPPA) * (1.0 + noise * rng.standard_normal(n.size))


def test_model_is_the_usl():
    n = np.array([1, 3, 10, 100], dtype=float)
    assert usl.usl(n, LAM, SIGMA, KAPPA) == pytest.approx(gunther(n, LAM, SIGMA, KAPPA), rel=1e-12)


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
    fit = usl.fit(n, gunther(n, 100.0, 0.2, 0.0))
    assert fit.peak is None


def test_too_few_points_is_a_fit_error():
    with pytest.raises(usl.FitError, match="needs 3 distinct N"):
        usl.fit([1, 2], [10.0, 18.0])


def test_density_crossings_measured_then_model():
    """Pure decline X(N) = 1000/(1+κ(N−1)) with κ=0.01 (the USL with σ=1). Inside the sweep
    the answer is the linear interpolation between the two measured points around the
    threshold; beyond it, the model's exact crossing 1/(1+κ(N−1)) = 0.5, N = 101."""
    def throughput(n):
        return 1000.0 / (1.0 + 0.01 * (n - 1))

    class Sweep:  # the two attributes density_row reads
        xs = [1, 2, 5, 10, 20, 50]

        def series(self, _key):
            return self.xs, [throughput(x) for x in self.xs], None

    def interpolated(frac, lo, hi):
        y_lo, y_hi, want = throughput(lo) / 1000.0, throughput(hi) / 1000.0, frac
        return lo + (hi - lo) * (y_lo - want) / (y_lo - y_hi)

    sweep = Sweep()
    xs, ys, _ = sweep.series(None)
    row = usl.density_row(usl.SweepFit(sweep, fit=usl.fit(xs, ys)))
    assert row.baseline_source == "measured" and row.baseline == 1000.0
    # 90 %: between N=10 (91.7 %) and N=20 (84.0 %), at N ≈ 12.26; 75 %: between 20 and 50, N ≈ 36.0.
    assert row.answers[90].source == "measured"
    assert row.answers[90].containers == pytest.approx(interpolated(0.90, 10, 20), rel=1e-6)
    assert row.answers[75].source == "measured"
    assert row.answers[75].containers == pytest.approx(interpolated(0.75, 20, 50), rel=1e-6)
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
