"""Claims from `mntscale list --json` evaluated on results: holds, deviates, not tested (and why)."""

import copy
import json
import os
import re

import pytest

from conftest import FIXTURES, run_cli
from mntscale_reports import claims, load

LIST = os.path.join(FIXTURES, "list.json")
FACTS = os.path.join(FIXTURES, "claims", "facts.json")
DEFAULT_RUN = os.path.join(FIXTURES, "findings", "default-run.json")


def _scenarios():
    return claims.read_list(LIST)


def _evaluate(path=FACTS, scenarios=None, only=None):
    results, _ = load.load_many([path])
    sc = scenarios or _scenarios()
    if only:
        sc = {k: v for k, v in sc.items() if k in only}
    return {(r.scenario, r.claim["id"]): r for r in claims.evaluate(results, sc)}


def _claim(scenarios, scenario, cid):
    return next(c for c in scenarios[scenario]["claims"] if c["id"] == cid)


def test_every_kind_holds_on_data_made_to_satisfy_it():
    got = _evaluate()
    for key in [("copy_tree", "linear-mounts"), ("churn", "churn-slows"), ("idmap_storm", "per-layer-grows"),
                ("idmap_storm", "parent-flat"), ("idmap_storm", "overlay-n-plus-2")]:
        assert got[key].status == claims.HOLDS, got[key]


def test_linear_reports_slope_in_claim_unit_and_r2_on_the_claim_points():
    r = _evaluate()[("copy_tree", "linear-mounts")]
    assert r.fit["points"] == 4 and r.fit["r2"] > 0.99
    assert r.fit["slope"] == pytest.approx(1.8e-6, rel=0.05)  # the fixture: 20 µs + 1.8 µs per mount
    assert "slope 1.79 µs/mount" in r.measured


def test_claim_deviates_with_numbers_when_the_data_disagrees():
    sc = _scenarios()
    _claim(sc, "copy_tree", "linear-mounts")["slope"] = [3.0, 5.0]  # the data has 1.8 µs/mount
    _claim(sc, "churn", "churn-slows")["range"] = [0.8, 1.2]  # the data has 0.55
    _claim(sc, "idmap_storm", "parent-flat")["where"] = {"idmap": "per-layer"}  # that one grows 16x
    got = _evaluate(scenarios=sc)
    lin, ratio, flat = got[("copy_tree", "linear-mounts")], got[("churn", "churn-slows")], \
        got[("idmap_storm", "parent-flat")]
    assert lin.status == claims.DEVIATES and "slope 1.79" in lin.measured
    assert ratio.status == claims.DEVIATES and "ratio 0.5" in ratio.measured and "containers=" in ratio.why
    assert flat.status == claims.DEVIATES and flat.fit["spread_pct"] > 100


def test_not_tested_says_why():
    sc = _scenarios()
    sc["copy_tree"]["claims"].append(dict(_claim(sc, "copy_tree", "linear-mounts"), id="absent-metric",
                                          metric="no_such_metric"))
    sc["churn"]["claims"].append({"id": "single", "kind": "flat", "metric": "items_per_second", "text": "t",
                                  "over": "containers", "within_pct": 5, "where": {"containers": 1}})
    got = _evaluate(scenarios=sc)
    assert got[("copy_tree", "absent-metric")].status == claims.NOT_TESTED
    assert "metric no_such_metric absent" in got[("copy_tree", "absent-metric")].why
    assert "axis containers not swept" in got[("churn", "single")].why
    listmount = got[("listmount", "listmount-linear")]
    assert listmount.status == claims.NOT_TESTED and "listmount needs Linux >= 6.8" in listmount.why
    assert got[("not_run", "x")].status == claims.NOT_TESTED


def test_skipped_points_make_a_claim_not_tested_with_the_skip_reason():
    sc = _scenarios()
    sc["listmount"]["unsupported"] = None  # the list does not know; the result's skipped entry does
    r = _evaluate(scenarios=sc)[("listmount", "listmount-linear")]
    assert r.status == claims.NOT_TESTED and r.why.startswith("points skipped: unsupported: listmount")


def test_flat_is_checked_per_series_with_other_axes_fixed():
    """Per-worker throughput is flat along containers in each workers series, though the two series
    differ by 15%: pooling them would call it 15% spread."""
    r = _evaluate(DEFAULT_RUN, only={"path_walk"})[("path_walk", "flat-containers")]
    assert r.status == claims.HOLDS and r.fit["spread_pct"] < 5 and "worst of 2 series" in r.measured
    sc = _scenarios()
    _claim(sc, "path_walk", "flat-containers")["over"] = "workers"
    r = _evaluate(DEFAULT_RUN, scenarios=sc, only={"path_walk"})[("path_walk", "flat-containers")]
    assert r.status == claims.DEVIATES and "1→2 workers" in r.measured


def test_axis_alias_and_string_values_match():
    sc = _scenarios()
    _claim(sc, "path_walk", "flat-containers")["over"] = "c"  # alias of containers in the list
    sc["path_walk"]["axes"][0]["name"], sc["path_walk"]["axes"][0]["aliases"] = "c", ["containers"]
    _claim(sc, "path_walk", "flat-containers")["where"] = {"workers": "2"}  # a string matches 2
    r = _evaluate(DEFAULT_RUN, scenarios=sc, only={"path_walk"})[("path_walk", "flat-containers")]
    assert r.status == claims.HOLDS and "workers=2" in r.measured and "worst" not in r.measured


def test_unknown_kind_is_not_tested_not_a_crash():
    sc = _scenarios()
    sc["churn"]["claims"] = [{"id": "new", "kind": "monotone", "metric": "items_per_second", "text": "t"}]
    r = _evaluate(scenarios=sc)[("churn", "new")]
    assert r.status == claims.NOT_TESTED and "unknown claim kind 'monotone'" in r.why


def test_bad_list_is_rejected(tmp_path):
    bad = tmp_path / "list.json"
    bad.write_text(json.dumps({"schema": "mntscale-list/0", "scenarios": []}))
    with pytest.raises(claims.ListError, match="expected 'mntscale-list/1'"):
        claims.read_list(str(bad))
    proc = run_cli("claims", FACTS, "--list", bad)
    assert proc.returncode == 2 and "mntscale-list/0" in proc.stderr


def test_cli_prints_facts_table_and_writes_json(tmp_path):
    proc = run_cli("claims", FACTS, "--list", LIST, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    # The table's columns are padded (tabulate): compare with runs of spaces as one.
    assert "| fact | expected | measured | holds / deviates |" in re.sub(" +", " ", proc.stdout)
    assert "churn: churn slows path walk" in proc.stdout and "not_run" not in proc.stdout
    doc = json.loads((tmp_path / "claims.json").read_text())
    assert doc["counts"] == {"holds": 5, "deviates": 0, "not tested": 1}
    assert (tmp_path / "facts.md").read_text() == proc.stdout[:-1]


def test_cli_exits_1_when_a_fact_deviates(tmp_path):
    doc = json.loads(open(LIST, encoding="utf-8").read())
    deviating = copy.deepcopy(doc)
    deviating["scenarios"][2]["claims"][0]["range"] = [0.9, 1.1]
    path = tmp_path / "list.json"
    path.write_text(json.dumps(deviating))
    proc = run_cli("claims", FACTS, "--list", path)
    assert proc.returncode == 1 and "| deviates" in proc.stdout


def test_cli_runs_the_binary_for_the_list(tmp_path):
    fake = tmp_path / "mntscale"
    fake.write_text(f"#!/bin/sh\n[ \"$1 $2\" = 'list --json' ] && exec cat {LIST}\nexit 2\n")
    fake.chmod(0o755)
    proc = run_cli("claims", FACTS, "--mntscale", fake)
    assert proc.returncode == 0 and "copy_tree is linear in mounts" in proc.stdout, proc.stderr


def test_ratio_above_its_range_deviates():
    # The churn fixture's ratio is 0.55: above [0.1, 0.3] as surely as below [0.8, 1.2].
    sc = _scenarios()
    _claim(sc, "churn", "churn-slows")["range"] = [0.1, 0.3]
    r = _evaluate(scenarios=sc)[("churn", "churn-slows")]
    assert r.status == claims.DEVIATES and "ratio 0.5" in r.measured and "containers=" in r.why
