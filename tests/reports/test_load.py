"""Loading and validation of result files."""

import os

from conftest import REPORT_FIXTURES
from mntscale_reports import load, tables


def _loaded():
    return load.load_many([REPORT_FIXTURES])


def test_bad_files_rejected_by_name_and_others_load():
    results, errors = _loaded()
    rejected = {os.path.basename(e.path): str(e) for e in errors}
    assert set(rejected) == {"malformed.json", "future-version.json"}
    assert "malformed.json" in rejected["malformed.json"] and "malformed JSON" in rejected["malformed.json"]
    assert "unknown schema_version 99" in rejected["future-version.json"]
    assert sorted(os.path.basename(r.path) for r in results) == [
        "epyc-6.1-emulated.json", "epyc-6.18.json", "xeon-6.18.json"]


def test_groups_cover_two_kernels_and_two_machines():
    results, _ = _loaded()
    groups = {p.group for p in load.all_points(results)}
    assert {g.kernel for g in groups} == {"6.18.44", "6.1.0-27-cloud-amd64 (emulated)"}
    assert {g.machine for g in groups} == {"epyc-2s", "xeon-2s"}
    assert {g.placement for g in groups} == {"spread", "compact"}


def test_skipped_point_is_kept_apart_from_measured_points():
    results, _ = _loaded()
    skips = load.all_skips(results)
    assert [s.reason for s in skips] == ["unsupported: listmount needs Linux >= 6.8"]
    assert not any(p.scenario == "listmount" for p in load.all_points(results))


def test_unsupported_counter_shows_reason_not_a_number():
    results, _ = _loaded()
    point = load.all_points(results)[0]
    text = tables.counters_text(point)
    assert "cycles: unsupported: no hardware PMU" in text
    assert "task-clock=" in text


def test_missing_file_and_bad_entry_are_load_errors(tmp_path):
    bad = tmp_path / "bad-entry.json"
    bad.write_text('{"schema": "mntscale-result", "schema_version": 1, "context": {}, '
                   '"benchmarks": [{"name": "x", "run_type": "iteration"}]}')
    results, errors = load.load_many([str(bad), str(tmp_path / "absent.json")])
    assert results == []
    assert "bad-entry.json: benchmarks[0] (x) lacks run_name" in str(errors[0])
    assert "absent.json: cannot read" in str(errors[1])
