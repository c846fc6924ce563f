"""A/B comparison: verdicts, sample sources, exit codes."""

import json
import os

import numpy as np

from conftest import COMPARE_FIXTURES, run_cli
from mntscale_reports import compare, load
from make_fixtures import context, iteration, result

BASE = os.path.join(COMPARE_FIXTURES, "base.json")


def test_five_percent_slower_is_worse_and_fails_gate(tmp_path):
    """slower.json is base's distribution scaled by 0.95, 6 reps, 1% noise per repetition.

    The gate threshold is set to 2.5%, half the injected drop: at the default
    5% the measured change (−5% ± ~0.6% sampling noise) sits on the threshold
    and the exit code would be a coin toss.
    """
    out = tmp_path / "cmp"
    proc = run_cli("compare", BASE, os.path.join(COMPARE_FIXTURES, "slower.json"), "--out", out,
                   "--json", tmp_path / "c.json", "--threshold", 2.5)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc == json.loads((out / "compare.json").read_text())
    assert doc["gate_failed"] and doc["points"]
    for p in doc["points"]:
        assert p["verdict"] == "worse" and p["p_value"] < 0.05 and p["ci_high"] < 0
        assert -7 < p["change_pct"] < -3
        assert p["sample_source"] == "repetitions"
    assert "FAIL" in (out / "compare.md").read_text() and (out / "summary.md").is_file()


def test_same_distribution_flags_nothing():
    proc = run_cli("compare", BASE, os.path.join(COMPARE_FIXTURES, "same.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 worse, 0 better" in proc.stdout


def test_bad_input_exits_2(tmp_path):
    missing = run_cli("compare", BASE, tmp_path / "absent.json")
    assert missing.returncode == 2 and "absent.json" in missing.stderr


# --- verdict rules on in-memory results ------------------------------------------------------

PARAMS = {"op": "stat", "containers": 1, "workers": 2, "placement": "spread", "layers": 10, "binds": 3,
          "depth": 8, "mode": "thread"}


def _result(means, windows=None):
    """A parsed result with one point whose repetitions have exactly the given throughputs."""
    rng = np.random.default_rng(0)
    entries = [iteration(rng, "path_walk", dict(PARAMS), max(m, 1.0), len(means), i, {}) for i, m in enumerate(means)]
    for e, m in zip(entries, means):
        e["items_per_second"] = m
        if windows is not None:
            e["windows"] = windows
    return load.parse("mem.json", result(context("epyc", "6.18.44", False), entries))


def _verdict(a, b, **kw):
    return compare.compare_results([a], [b], compare.Options(**kw)).points[0]


def test_noisy_data_is_inconclusive_never_no_change():
    rng = np.random.default_rng(1)
    a = _result(list(100.0 * (1 + 0.3 * rng.standard_normal(5))))
    b = _result(list(100.0 * (1 + 0.3 * rng.standard_normal(5))))
    assert _verdict(a, b).verdict == "inconclusive"


def test_too_few_samples_is_inconclusive():
    point = _verdict(_result([100.0, 101.0], windows=[]), _result([90.0, 91.0], windows=[]))
    assert point.sample_source == "insufficient"
    assert point.verdict == "inconclusive"


def test_single_repetition_falls_back_to_windows():
    a = _result([100.0], windows=[99.0, 100.0, 101.0, 100.5, 99.5])
    b = _result([80.0], windows=[79.0, 80.0, 81.0, 80.5, 79.5])
    point = _verdict(a, b)
    assert point.sample_source == "windows" and point.n_a == 5
    assert point.verdict == "worse"


def test_gate_needs_change_beyond_threshold():
    a = _result([100.0, 100.2, 99.8, 100.1, 99.9])
    b = _result([97.0, 97.2, 96.8, 97.1, 96.9])
    point = _verdict(a, b, threshold=5.0)
    assert point.verdict == "worse" and not point.fails_gate
    assert _verdict(a, b, threshold=2.0).fails_gate


def test_bootstrap_is_deterministic():
    a = _result([100.0, 100.2, 99.8, 100.1, 99.9])
    b = _result([101.0, 100.7, 101.3, 100.9, 101.1])
    first, second = _verdict(a, b), _verdict(a, b)
    assert (first.ci_low, first.ci_high) == (second.ci_low, second.ci_high)
    assert first.verdict == "better"


def test_zero_throughput_is_inconclusive_not_a_crash():
    point = _verdict(_result([0.0, 0.0, 0.0]), _result([10.0, 11.0, 12.0]))
    assert point.verdict == "inconclusive" and point.change_pct is None
    assert "—%" in compare.to_markdown(compare.compare_results([_result([0.0] * 3)], [_result([1.0] * 3)]))
