"""`qualify CANDIDATE --reference REFERENCE`: qualified (0) / not qualified (1) / inconclusive (3), 2 bad input."""

import json
import os
import shutil

import pytest

from conftest import COMPARE_FIXTURES, run_cli
from mntscale_reports import compare, qualify

BASE = os.path.join(COMPARE_FIXTURES, "base")
SAME = os.path.join(COMPARE_FIXTURES, "same")
SLOWER = os.path.join(COMPARE_FIXTURES, "slower")


def _list(tmp_path, claim):
    """A scenario list whose one path_walk claim is ``claim``."""
    doc = {"schema": "mntscale-list/1", "ops": ["stat"], "scenarios": [
        {"name": "path_walk", "mechanism": "m", "expect": "e", "unsupported": None,
         "axes": [{"name": "containers", "type": "int", "default": [1], "aliases": []}],
         "claims": [dict({"id": "c1", "metric": "items_per_second", "text": "the claim"}, **claim)]}]}
    path = tmp_path / "list.json"
    path.write_text(json.dumps(doc))
    return path


HOLDS = {"kind": "below", "value": 1e9}  # the fixtures run at about 2.4 M ops/s
DEVIATES = {"kind": "grows", "with": "containers"}  # the fixtures fall with containers


def _qualify(tmp_path, candidate, reference=BASE, claim=HOLDS, *extra):
    out = tmp_path / "q"
    proc = run_cli("qualify", candidate, "--reference", reference, "--list", _list(tmp_path, claim),
                   "--out", out, *extra)
    doc = json.loads((out / "qualify.json").read_text()) if (out / "qualify.json").exists() else None
    return proc, doc


def test_identical_sides_are_never_not_qualified(tmp_path):
    proc, doc = _qualify(tmp_path, SAME)
    assert proc.returncode in (qualify.EXIT_QUALIFIED, qualify.EXIT_INCONCLUSIVE), proc.stdout + proc.stderr
    assert doc["verdict"] in ("qualified", "inconclusive") and doc["exit_code"] == proc.returncode
    assert doc["facts"]["counts"]["holds"] == 1
    assert proc.stdout.startswith("# mntscale qualify") and f"**{doc['verdict'].upper()}**" in proc.stdout


def test_a_slowed_candidate_is_not_qualified_naming_the_points(tmp_path):
    """slower/ is base's build at 0.95 (5 invocations, 1.5% drift each); gate at 2.5%."""
    proc, doc = _qualify(tmp_path, SLOWER, BASE, HOLDS, "--threshold", 2.5)
    assert proc.returncode == qualify.EXIT_NOT_QUALIFIED, proc.stdout + proc.stderr
    assert doc["verdict"] == "not qualified"
    named = [r for r in doc["reasons"] if "regressed" in r and "beyond the 2.5% gate" in r]
    assert len(named) == 3
    for c in (1, 10, 100):
        assert any(f"path_walk/op:stat/containers:{c}/workers:2/placement:spread`" in r for r in named)


def test_a_deviating_fact_disqualifies_identical_sides(tmp_path):
    proc, doc = _qualify(tmp_path, SAME, BASE, DEVIATES)
    assert proc.returncode == qualify.EXIT_NOT_QUALIFIED, proc.stdout
    reason = next(r for r in doc["reasons"] if r.startswith("fact deviates"))
    assert "path_walk: the claim" in reason and "(the reference deviates too)" in reason


def test_too_few_invocations_is_inconclusive_with_the_count_needed(tmp_path):
    for side, src in (("ref", BASE), ("cand", SAME)):
        os.makedirs(tmp_path / side)
        for i in (1, 2):
            shutil.copy(os.path.join(src, f"invocation-{i}.json"), tmp_path / side)
    proc, doc = _qualify(tmp_path, tmp_path / "cand", tmp_path / "ref")
    assert proc.returncode == qualify.EXIT_INCONCLUSIVE == 3, proc.stdout + proc.stderr
    assert doc["verdict"] == "inconclusive"
    assert set(doc["rerun_invocations_per_side"].values()) == {4}
    assert "needs about 4 invocations per side (has 2)" in proc.stdout
    assert "until each has 4 invocations (2 more per side" in proc.stdout


def test_bad_input_exits_2(tmp_path):
    missing = run_cli("qualify", SAME, "--reference", tmp_path / "absent")
    assert missing.returncode == 2 and "absent" in missing.stderr
    no_list = run_cli("qualify", SAME, "--reference", BASE, "--mntscale", tmp_path / "no-binary")
    assert no_list.returncode == 2 and "--no-facts" in no_list.stderr
    bad_threshold = run_cli("qualify", SAME, "--reference", BASE, "--no-facts", "--threshold", 0)
    assert bad_threshold.returncode == 2 and "--threshold: '0'" in bad_threshold.stderr


def test_no_facts_qualifies_on_the_comparison_alone(tmp_path):
    proc = run_cli("qualify", SAME, "--reference", BASE, "--no-facts")
    assert proc.returncode in (0, 3) and "Not checked: no scenario list" in proc.stdout


def _point(n, ci, change, cv=0.01):
    return compare.PointResult("p", {}, n, n, 3 * n, 3 * n, 1.0, 1.0, change, ci_low=ci[0], ci_high=ci[1],
                               cv_a=cv, cv_b=cv, verdict=compare.INCONCLUSIVE)


def test_invocations_needed_scales_the_ci_half_width():
    opts = compare.Options(threshold=5.0)
    # half-width 6% around -1%: must shrink to 4% (5% margin − |−1%|): n × (6/4)² = 9 at n = 4
    assert qualify.invocations_needed(_point(4, (-7.0, 5.0), -1.0), opts) == 9
    assert qualify.invocations_needed(_point(2, (-7.0, 5.0), -1.0), opts) == 4  # the minimum first
    assert qualify.invocations_needed(_point(6, (-9.0, 9.0), 0.0, cv=0.2), opts) is None  # too noisy
    assert qualify.invocations_needed(_point(6, (-7.0, -3.0), -5.5), opts) is None  # change ≥ margin


@pytest.mark.parametrize("verdict, code", [("qualified", 0), ("not qualified", 1), ("inconclusive", 3)])
def test_exit_codes_are_distinct(verdict, code):
    assert qualify.EXIT_CODES[verdict] == code


def test_a_nightly_night_file_is_a_side(tmp_path):
    """ci/nightly stores a night as one file of tagged invocations: qualify reads it as 5 invocations."""
    night = os.path.join(COMPARE_FIXTURES, "night-slower.json")
    proc, doc = _qualify(tmp_path, night, BASE, HOLDS, "--threshold", 2.5)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert all(p["n_b"] == 5 for p in doc["compare"]["points"])
