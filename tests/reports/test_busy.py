"""Issue 23: no verdict and no finding from noisy repetitions (recorded fixtures).

fixtures/busy/{base,slower} are compare/{base,slower} (same seeds: slower is the build at 0.95)
measured beside a CPU-bound neighbour: half of every invocation's repetitions carry mntscale's
"noisy" flag, and on the slowed side those run 30% faster -- the machine's difference, as on the
2-vCPU VM where the slowed side measured "better by +31%". The quiet twins must give the
verdict and the finding; the busy ones neither.
"""

import json
import os

from conftest import COMPARE_FIXTURES, FIXTURES, run_cli

BUSY = os.path.join(FIXTURES, "busy")


def _compare(tmp_path, a, b):
    out = tmp_path / "c.json"
    proc = run_cli("compare", a, b, "--json", out, "--threshold", 2.5)
    return proc, json.loads(out.read_text())


def test_busy_fixtures_get_no_better_or_worse(tmp_path):
    proc, doc = _compare(tmp_path, os.path.join(BUSY, "base"), os.path.join(BUSY, "slower"))
    assert doc["counts"]["worse"] == doc["counts"]["better"] == 0, doc["counts"]
    assert not doc["gate_failed"] and doc["status"] == "NO VERDICT", doc["status"]
    for p in doc["points"]:
        assert p["verdict"] == "inconclusive", p
        assert "measured on a busy machine (10 of 10 invocations noisy" in p["reason"], p["reason"]
    assert doc["noisy_invocations"] == doc["invocations"] == 30
    assert "30 of 30 invocations (100%) noisy, left out" in proc.stdout, proc.stdout


def test_quiet_twins_get_the_verdict(tmp_path):
    _, doc = _compare(tmp_path, os.path.join(COMPARE_FIXTURES, "base"), os.path.join(COMPARE_FIXTURES, "slower"))
    assert doc["counts"]["worse"] == 3 and doc["gate_failed"], doc["counts"]
    assert doc["noisy_invocations"] == 0 and doc["resolution"].endswith("quiet invocations per side)")


def _qualify(tmp_path, a, b):
    out = tmp_path / "q"
    proc = run_cli("qualify", b, "--reference", a, "--no-facts", "--out", out, "--threshold", 2.5)
    return proc, json.loads((out / "qualify.json").read_text())


def test_qualify_busy_is_inconclusive_and_says_why(tmp_path):
    proc, doc = _qualify(tmp_path, os.path.join(BUSY, "base"), os.path.join(BUSY, "slower"))
    assert proc.returncode == 3 and doc["verdict"] == "inconclusive", proc.stdout
    assert not any("regressed" in r or "is worse" in r for r in doc["reasons"]), doc["reasons"]
    assert all("busy machine" in r for r in doc["reasons"]), doc["reasons"]
    assert "needs about 4 quiet invocations per side" in proc.stdout, proc.stdout


def test_qualify_quiet_twins_are_not_qualified(tmp_path):
    proc, doc = _qualify(tmp_path, os.path.join(COMPARE_FIXTURES, "base"), os.path.join(COMPARE_FIXTURES, "slower"))
    assert proc.returncode == 1 and doc["verdict"] == "not qualified", proc.stdout


def _findings(tmp_path, side):
    out = tmp_path / "r"
    proc = run_cli("report", out, side)
    assert proc.returncode == 0, proc.stderr
    text = (out / "summary.md").read_text()
    return text.split("## Findings", 1)[1].split("\n\n", 2)[1]


def test_report_states_no_finding_from_busy_points_and_lists_it_withheld(tmp_path):
    findings = _findings(tmp_path, os.path.join(BUSY, "slower"))
    assert "falls" not in findings and "grows" not in findings and "flat" not in findings, findings
    assert ("Not stated: path_walk: per-worker stat throughput from 1 to 100 containers: measured on a busy "
            "machine (45 of 90 repetitions noisy)") in findings, findings


def test_report_states_the_finding_with_its_interval_when_quiet(tmp_path):
    findings = _findings(tmp_path, os.path.join(COMPARE_FIXTURES, "slower"))
    assert "per-worker stat throughput falls 49% from 1 to 100 containers" in findings, findings
    assert "95% CI -49.9% to -49.1%" in findings and "Not stated" not in findings, findings


def test_keep_noisy_counts_them_for_a_deliberate_perturbation(tmp_path):
    """--keep-noisy (the tests' own mount_lock writers are a neighbour on purpose): the noisy
    invocations are samples again -- and the busy fixtures' inflated repetitions then show why
    that is never for a kernel verdict on a shared machine."""
    out = tmp_path / "c.json"
    run_cli("compare", os.path.join(BUSY, "base"), os.path.join(BUSY, "slower"), "--json", out, "--keep-noisy")
    doc = json.loads(out.read_text())
    assert doc["noisy_invocations"] == 0 and all(p["n_a"] == p["n_b"] == 5 for p in doc["points"]), doc["points"]
    assert all("busy machine" not in p["reason"] for p in doc["points"])


def _claims(tmp_path, side):
    out = tmp_path / "claims"
    run_cli("claims", side, "--list", os.path.join(FIXTURES, "list.json"), "--out", out)
    return json.loads((out / "claims.json").read_text())["claims"]


def test_no_fact_is_decided_from_busy_points(tmp_path):
    """A claim on path_walk holds or deviates on the quiet twin; on the busy fixtures it is not
    tested, and says why."""
    quiet = [c for c in _claims(tmp_path / "q", os.path.join(COMPARE_FIXTURES, "slower"))
             if c["scenario"] == "path_walk" and c["status"] != "not tested"]
    assert quiet, "the quiet twin decides some path_walk claim"
    busy = {c["id"]: c for c in _claims(tmp_path / "b", os.path.join(BUSY, "slower")) if c["scenario"] == "path_walk"}
    for c in quiet:
        assert busy[c["id"]]["status"] == "not tested", busy[c["id"]]
        assert "measured on a busy machine (45 of 90 repetitions noisy)" in busy[c["id"]]["why"], busy[c["id"]]
