"""stats.bootstrap_pct_ci goes through scipy.stats.bootstrap and stays what it was."""

import numpy as np
import pytest

from mntscale_reports import stats


def _hand_written(a, b, seed, confidence=0.95, resamples=stats.BOOTSTRAP_RESAMPLES):
    """The resampling stats.py did by hand before scipy.stats.bootstrap replaced it."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ma = rng.choice(a, size=(resamples, a.size), replace=True).mean(axis=1)
    mb = rng.choice(b, size=(resamples, b.size), replace=True).mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile((mb / ma - 1.0) * 100.0, [tail, 100.0 - tail])
    return float(lo), float(hi)


@pytest.mark.parametrize("case", range(20))
def test_scipy_bootstrap_gives_the_hand_written_interval(case):
    rng = np.random.default_rng(case)
    a = rng.normal(100.0, 8.0, int(rng.integers(2, 10)))
    b = rng.normal(104.0, 8.0, int(rng.integers(2, 10)))
    seed = stats.seed_for(f"point-{case}")
    assert stats.bootstrap_pct_ci(a, b, seed) == _hand_written(a, b, seed)
    assert stats.bootstrap_pct_ci(a, b, seed, 0.9, 500) == _hand_written(a, b, seed, 0.9, 500)


def test_same_seed_same_interval_other_seed_other_interval():
    a, b = [10.0, 11.0, 9.5, 10.4], [11.0, 12.1, 10.9, 11.6]
    assert stats.bootstrap_pct_ci(a, b, 7) == stats.bootstrap_pct_ci(a, b, 7)
    assert stats.bootstrap_pct_ci(a, b, 7) != stats.bootstrap_pct_ci(a, b, 8)


def test_one_observation_and_all_equal_samples():
    """scipy refuses a one-observation sample: the guarded path answers as before."""
    assert stats.bootstrap_pct_ci([10.0], [11.0, 12.0, 13.0], 3) == _hand_written([10.0], [11.0, 12.0, 13.0], 3)
    lo, hi = stats.bootstrap_pct_ci([10.0], [12.0], 3)
    assert lo == pytest.approx(20.0) and hi == pytest.approx(20.0)
    assert stats.bootstrap_pct_ci([5.0, 5.0, 5.0], [5.0, 5.0], 1) == (0.0, 0.0)
