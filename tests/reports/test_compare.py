"""A/B comparison: the invocation is the sample, verdict rules, exit codes."""

import json
import os

import numpy as np
import pytest

from conftest import COMPARE_FIXTURES, run_cli
from mntscale_reports import compare, load, stats
from make_fixtures import context, iteration, result

BASE = os.path.join(COMPARE_FIXTURES, "base")  # 5 invocations, one file each


def test_five_percent_slower_is_worse_and_fails_gate(tmp_path):
    """slower/ is base's build scaled by 0.95: 5 invocations, each with its own 1.5% level.

    The gate threshold is set to 2.5%, half the injected drop: at the default
    5% the measured change (−5% ± invocation drift) sits on the threshold and
    the exit code would be a coin toss.
    """
    out = tmp_path / "cmp"
    proc = run_cli("compare", BASE, os.path.join(COMPARE_FIXTURES, "slower"), "--out", out,
                   "--json", tmp_path / "c.json", "--threshold", 2.5)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc == json.loads((out / "compare.json").read_text())
    assert doc["gate_failed"] and doc["points"] and doc["sampling_unit"] == "invocation"
    for p in doc["points"]:
        assert p["verdict"] == "worse" and p["p_value"] < 0.05 and p["ci_high"] < 0
        assert -7 < p["change_pct"] < -3
        assert (p["n_a"], p["n_b"], p["reps_a"]) == (5, 5, 30)
    assert "FAIL" in (out / "compare.md").read_text() and (out / "summary.md").is_file()


def test_same_build_flags_nothing_and_says_no_change():
    proc = run_cli("compare", BASE, os.path.join(COMPARE_FIXTURES, "same"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 worse, 0 better, 3 no change" in proc.stdout


def test_one_invocation_per_side_gets_no_verdict():
    """Two invocations of one build at levels 4% apart, 6 repetitions each.

    Taken as 6 + 6 independent samples the repetitions call that significant (the
    false positive seen on real A/A runs); one invocation per side is inconclusive.
    """
    a = load.load_file(os.path.join(COMPARE_FIXTURES, "drift-a.json"))
    b = load.load_file(os.path.join(COMPARE_FIXTURES, "drift-b.json"))
    for pa, pb in zip(a.points, b.points):
        assert stats.mannwhitney_p(pa.values("items_per_second"), pb.values("items_per_second")) < 0.05
    result = compare.compare_results([a], [b])
    assert [p.verdict for p in result.points] == ["inconclusive"] * 3
    assert all((p.n_a, p.n_b) == (1, 1) and "invocations" in p.reason for p in result.points)
    assert not result.gate_failures


def test_merged_night_splits_into_invocations():
    proc = run_cli("compare", BASE, os.path.join(COMPARE_FIXTURES, "night-slower.json"), "--threshold", 2.5)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "5/5 (30/30)" in proc.stdout and "3 worse" in proc.stdout


def test_bad_input_exits_2(tmp_path):
    missing = run_cli("compare", BASE, tmp_path / "absent.json")
    assert missing.returncode == 2 and "absent.json" in missing.stderr


# --- verdict rules on in-memory results ------------------------------------------------------

PARAMS = {"op": "stat", "containers": 1, "workers": 2, "placement": "spread", "layers": 10, "binds": 3,
          "depth": 8, "mode": "thread"}


def _result(means, reps=1, noisy=()):
    """A parsed night: invocation i has ``reps`` repetitions of throughput means[i]; the
    invocations in ``noisy`` have their first repetition flagged noisy, as mntscale flags it."""
    rng = np.random.default_rng(0)
    entries = []
    for i, m in enumerate(means):
        for k in range(reps):
            e = iteration(rng, "path_walk", dict(PARAMS), max(m, 1.0), reps, k, {})
            e["items_per_second"], e["invocation"] = m, i
            if i in noisy and k == 0:
                e["noisy"] = {"other_share": 0.45, "reason": "other tasks ran 45% of the worker CPUs' time"}
            entries.append(e)
    return load.parse("mem.json", result(context("epyc", "6.18.44", False), entries))


def _verdict(a, b, **kw):
    return compare.compare_results([a], [b], compare.Options(**kw)).points[0]


def test_noisy_data_is_inconclusive_never_no_change():
    rng = np.random.default_rng(1)
    a = _result(list(100.0 * (1 + 0.3 * rng.standard_normal(5))))
    b = _result(list(100.0 * (1 + 0.3 * rng.standard_normal(5))))
    point = _verdict(a, b)
    assert point.verdict == "inconclusive" and "noisy" in point.reason


def test_three_invocations_are_too_few():
    point = _verdict(_result([100.0, 100.5, 99.5]), _result([80.0, 80.5, 79.5]))
    assert (point.n_a, point.n_b) == (3, 3)
    assert point.verdict == "inconclusive" and "4 independent invocations" in point.reason


def test_repetitions_of_one_invocation_are_one_sample():
    one = load.parse("one.json", result(context("epyc", "6.18.44", False), [
        dict(iteration(np.random.default_rng(0), "path_walk", dict(PARAMS), 100.0, 5, i, {}), items_per_second=v)
        for i, v in enumerate([100.0, 101.0, 99.0, 100.5, 99.5])]))
    point = _verdict(one, _result([80.0] * 5))
    assert (point.n_a, point.reps_a, point.mean_a) == (1, 5, 100.0)
    assert point.verdict == "inconclusive"


def test_no_change_needs_the_ci_inside_the_margin():
    a = _result([100.0, 103.0, 97.0, 101.0, 99.0])
    b = _result([100.0, 97.0, 103.0, 99.5, 100.5])
    assert _verdict(a, b).verdict == "no change"
    narrow = _verdict(a, b, equivalence=0.5)
    assert narrow.verdict == "inconclusive" and "not ruled out" in narrow.reason


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
    point = _verdict(_result([0.0] * 5), _result([10.0, 11.0, 12.0, 10.5, 11.5]))
    assert point.verdict == "inconclusive" and point.change_pct is None
    one_zero = _verdict(_result([0.0, 10.0, 11.0, 10.5, 11.5]), _result([10.0, 11.0, 12.0, 10.5, 11.5]))
    assert one_zero.verdict == "inconclusive" and "zero" in one_zero.reason
    assert "—%" in compare.to_markdown(compare.compare_results([_result([0.0] * 5)], [_result([1.0] * 5)]))


def test_resolution_says_how_many_invocations_would_do():
    a = _result([100.0, 110.0, 90.0, 105.0, 95.0])
    b = _result([100.0, 92.0, 108.0, 96.0, 104.0])
    text = compare.resolution(compare.compare_results([a], [b]))
    assert text.startswith("Resolution: median 95% CI half-width") and "needs about" in text
    quiet = compare.resolution(compare.compare_results([_result([100.0, 100.1, 99.9, 100.0, 100.05])],
                                                       [_result([100.0, 100.1, 99.9, 100.0, 99.95])]))
    assert "needs" not in quiet


def test_bh_adjust_matches_the_textbook():
    # Benjamini & Hochberg's step-up on five p-values, checked by hand.
    q = stats.bh_adjust([0.01, 0.04, 0.03, 0.005, 0.5])
    assert q == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])


def test_bh_running_minimum_on_a_non_monotone_vector():
    """p·m/rank is 0.04, 0.04, 0.028, 0.5 here: not monotone, so the step-up's running minimum
    lowers the first two to 0.028 (a plain p·m/rank would leave them at 0.04)."""
    q = stats.bh_adjust([0.02, 0.01, 0.021, 0.5])
    assert q == pytest.approx([0.028, 0.028, 0.028, 0.5])


def _decided(ci_low, ci_high, q=0.3, change=3.0):
    r = compare.PointResult("p", {}, 8, 8, 8, 8, 100.0, 100.0 + change, change, ci_low=ci_low, ci_high=ci_high,
                            p_value=q, q_value=q, cv_a=0.01, cv_b=0.01)
    return compare._verdict(r, compare.Options())


@pytest.mark.parametrize("ci", [(-0.2, 7.0), (-7.0, 0.2), (-6.0, 6.0)])
def test_no_change_needs_the_whole_interval_inside_the_margin(ci):
    """A CI that reaches the ±5% margin on either end does not rule that change out: [-0.2, +7]%
    is "inconclusive", never "no change" (one end inside is not enough)."""
    verdict, reason = _decided(*ci)
    assert verdict == "inconclusive" and "not ruled out" in reason, (verdict, reason)
    assert _decided(-0.2, 0.3)[0] == "no change"


def test_noisy_invocations_are_not_evidence():
    """The slowed side B measured beside a neighbour looks +30% "better" in its noisy invocations.
    Those are left out: with 3 quiet of 6 on each side no verdict, and the reason says busy machine."""
    a = _result([100.0, 100.2, 99.8, 100.1, 99.9, 100.0], reps=2, noisy={1, 3, 5})
    b = _result([97.0, 130.0, 96.9, 131.0, 97.1, 129.0], reps=2, noisy={1, 3, 5})
    point = _verdict(a, b)
    assert point.verdict == "inconclusive", point
    assert "measured on a busy machine (6 of 12 invocations noisy" in point.reason, point.reason
    assert (point.n_a, point.n_b, point.noisy_inv_a, point.noisy_inv_b) == (3, 3, 3, 3)
    # Enough quiet invocations left: the verdict comes from them alone (the 3% slowdown, not +30%).
    a = _result([100.0, 100.2, 99.8, 100.1, 99.9, 100.0, 100.1, 99.9], noisy={1, 3})
    b = _result([97.0, 130.0, 96.9, 131.0, 97.1, 97.0, 96.8, 97.2], noisy={1, 3})
    point = _verdict(a, b)
    assert point.verdict == "worse" and point.n_a == point.n_b == 6 and -3.3 < point.change_pct < -2.7, point


def test_header_gives_resolution_and_noise_share():
    a = _result([100.0, 100.2, 99.8, 100.1, 99.9, 100.0, 100.1, 99.9], noisy={1, 3})
    b = _result([97.0, 130.0, 96.9, 131.0, 97.1, 97.0, 96.8, 97.2], noisy={1, 3})
    text = compare.to_markdown(compare.compare_results([a], [b]))
    assert "4 of 16 invocations (25%) noisy, left out" in text, text
    assert "Resolution reached: ±" in text and "at 95% for most points" in text, text


def test_many_unchanged_points_flag_nothing():
    """An A/A pair of 20 points: by chance some point has p < 0.05; adjusted, none is flagged.

    Seed 18 is one where the smallest raw p is 0.0046: raw p-values would flag that point.
    """
    rng = np.random.default_rng(18)

    def side():
        means = 100.0 * (1 + 0.04 * rng.standard_normal((20, 10)))
        entries = []
        for n, row in enumerate(means):
            for i, m in enumerate(row):
                e = iteration(rng, "path_walk", dict(PARAMS, containers=n + 1), 100.0, 1, 0, {})
                e["items_per_second"], e["invocation"] = float(m), i
                entries.append(e)
        return load.parse("mem.json", result(context("epyc", "6.18.44", False), entries))

    cmp = compare.compare_results([side()], [side()])
    assert len(cmp.points) == 20
    assert min(p.p_value for p in cmp.points) < 0.05  # what raw p-values would have flagged
    assert not [p for p in cmp.points if p.verdict in ("worse", "better")]


def test_pass_with_no_point_decided_has_its_own_headline_and_exit_code(tmp_path):
    """One invocation per side decides nothing: that must not read (or exit) like a pass."""
    proc = run_cli("compare", os.path.join(COMPARE_FIXTURES, "drift-a.json"),
                   os.path.join(COMPARE_FIXTURES, "drift-b.json"), "--json", tmp_path / "c.json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "**NO VERDICT" in proc.stdout and "**PASS" not in proc.stdout
    assert json.loads((tmp_path / "c.json").read_text())["status"] == "NO VERDICT"
    decided = run_cli("compare", BASE, os.path.join(COMPARE_FIXTURES, "same"))
    assert decided.returncode == 0 and "**PASS**" in decided.stdout


def test_noisy_repetitions_are_counted_and_shown(tmp_path):
    """Issue 14: a repetition mntscale flagged "noisy" (other tasks used its worker CPUs) is counted
    per side and named in the comparison's row, so a slowdown measured beside another run is not
    read as the kernel's."""
    noisy_dir = tmp_path / "noisy"
    noisy_dir.mkdir()
    for name in sorted(os.listdir(os.path.join(COMPARE_FIXTURES, "same"))):
        doc = json.load(open(os.path.join(COMPARE_FIXTURES, "same", name), encoding="utf-8"))
        for b in doc["benchmarks"]:
            if b.get("run_type") == "iteration":
                b["noisy"] = {"reason": "other tasks took 50% of the worker CPUs", "other_share": 0.5}
        (noisy_dir / name).write_text(json.dumps(doc))
    out = tmp_path / "cmp"
    proc = run_cli("compare", BASE, noisy_dir, "--out", out, "--json", tmp_path / "c.json")
    assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "c.json").read_text())
    assert all(p["noisy_a"] == 0 and p["noisy_b"] == p["reps_b"] > 0 for p in doc["points"]), doc["points"]
    assert "⚠ noisy: 0/" in (out / "compare.md").read_text()
