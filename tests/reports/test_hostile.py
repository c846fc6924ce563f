"""Issue 14: hostile result files and options are rejected with a reason, never a traceback.

Each case here was a traceback or a silently accepted bad value before the loader checked
docs/results-schema.json, finite numbers and nesting, and the CLI range-checked its options.
"""

import json
import os

import pytest

from conftest import COMPARE_FIXTURES, REPORT_FIXTURES, run_cli
from mntscale_reports import cli, compare, load, usl

GOOD = os.path.join(REPORT_FIXTURES, "xeon-6.18.json")
BASE, SLOWER = os.path.join(COMPARE_FIXTURES, "base"), os.path.join(COMPARE_FIXTURES, "slower")


class Ran:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def main(capsys, *args):
    """The CLI in this process (a subprocess costs seconds of imports): exit code and output."""
    try:
        rc = cli.main([str(a) for a in args])
    except SystemExit as e:  # argparse's usage errors
        rc = e.code
    out = capsys.readouterr()
    return Ran(rc, out.out, out.err)


def _good():
    with open(GOOD, encoding="utf-8") as f:
        return json.load(f)


def _entries(doc):
    return [b for b in doc["benchmarks"] if b.get("run_type") == "iteration"]


def _set(path_in_doc, value, every=False):
    """A mutation of the good file: set one field (in the first iteration entry, or in all)."""
    def mutate(doc):
        where, key = path_in_doc
        targets = (_entries(doc) if every else _entries(doc)[:1]) if where == "entry" else [doc[where]] \
            if where != "top" else [doc]
        for t in targets:
            t[key] = value
    return mutate


# name -> (mutation of the good document, or raw text; words the rejection must contain)
HOSTILE = {
    "deep-nesting": ('{"schema": "mntscale-result", "schema_version": 1, "context": {}, "benchmarks": '
                     + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
    "nesting-over-cap": ('{"schema": "mntscale-result", "schema_version": 1, "context": {"config": '
                         + "[" * 200 + "]" * 200 + '}, "benchmarks": []}', "nested deeper than"),
    "context-kernel-string": (_set(("context", "kernel"), "6.1"), "context.kernel"),
    "context-topology-list": (_set(("context", "topology"), [1]), "context.topology"),
    "context-profile-int": (_set(("context", "profile"), 5), "context.profile"),
    "context-mount-hash-string": (_set(("context", "mount_hash"), "x"), "context.mount_hash"),
    "run-name-list": (_set(("entry", "run_name"), ["a"]), "run_name"),
    "params-container-string": (_set(("entry", "params"), {"containers": "ten", "workers": 2}), "containers"),
    "params-workers-list": (_set(("entry", "params"), {"containers": 1, "workers": [2]}), "workers"),
    "counter-not-object": (_set(("entry", "counters"), {"cycles": 5}), "counters.cycles"),
    "latency-list": (_set(("entry", "latency_ns"), [1]), "latency_ns"),
    "windows-int": (_set(("entry", "windows"), 7), "windows"),
    "skipped-list": (_set(("entry", "skipped"), ["x"]), "skipped"),
    "throughput-1e308": (_set(("entry", "items_per_second"), 1e308, every=True), "maximum"),
    "throughput-huge-int": (_set(("entry", "items_per_second"), 10 ** 400), "64 bits"),
    "throughput-string": (_set(("entry", "items_per_second"), "fast"), "items_per_second"),
    "time-nan": (_set(("entry", "real_time"), float("nan")), "NaN"),
    "time-infinity": (_set(("entry", "cpu_time"), float("inf")), "Infinity"),
    "time-negative": (_set(("entry", "real_time"), -5), "minimum"),
    "overflowing-float": (None, "non-finite"),  # 1e400 in the text decodes to inf
    "complete-no": (_set(("top", "complete"), "no"), "complete"),
    "attribution-share-string": (_set(("entry", "attribution"), {"buckets": {"mount_lock": "x"}}), "buckets"),
    "top-level-list": ("[1, 2, 3]", "not a JSON object"),
}


def _write(tmp_path, name, spec):
    mutation, _ = spec
    path = tmp_path / f"{name}.json"
    if isinstance(mutation, str):
        path.write_text(mutation)
    elif mutation is None:  # overflowing-float
        path.write_text(json.dumps(_good()).replace('"real_time": ', '"real_time": 1e400, "x": ', 1))
    else:
        doc = _good()
        mutation(doc)
        path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_rejected_with_a_reason(tmp_path, name):
    path = _write(tmp_path, name, HOSTILE[name])
    results, errors = load.load_many([str(path), GOOD])
    assert [os.path.basename(r.path) for r in results] == ["xeon-6.18.json"]
    assert len(errors) == 1 and errors[0].path == str(path)
    assert HOSTILE[name][1] in errors[0].reason, errors[0].reason


def test_report_survives_every_hostile_file_beside_a_good_one(tmp_path):
    """One report over all of them: each rejected by name, the good file still reported."""
    bad = [_write(tmp_path, name, spec) for name, spec in HOSTILE.items()]
    proc = run_cli("report", tmp_path / "out", *bad, GOOD)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for path in bad:
        assert f"rejected {path}: " in proc.stderr
    assert f"1 result file(s) loaded (0 incomplete), {len(bad)} rejected" in proc.stdout
    assert (tmp_path / "out" / "index.html").exists()


def test_compare_and_usl_survive_hostile_files(tmp_path, capsys):
    bad = _write(tmp_path, "run-name-list", HOSTILE["run-name-list"])
    proc = main(capsys, "compare", bad, BASE)
    assert proc.returncode == 2 and "run_name" in proc.stderr
    assert main(capsys, "usl", bad, GOOD).returncode == 0


def test_a_non_regular_file_is_rejected_not_read(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    results, errors = load.load_many([str(fifo), GOOD])
    assert len(results) == 1 and "not a regular file" in errors[0].reason


def test_incomplete_file_counts_as_incomplete(tmp_path):
    doc = _good()
    doc["complete"], doc["incomplete_reason"] = False, "SIGINT"
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(doc))
    assert load.load_file(str(path)).complete is False
    assert load.load_file(GOOD).complete is True


# --- zero throughput ----------------------------------------------------------------------

def test_zero_throughput_is_accepted_and_usl_and_report_do_not_crash(tmp_path, capsys):
    """The writer records a point that completed no operation as 0 ops/s: valid, but not a baseline."""
    doc = _good()
    for e in _entries(doc):
        e["items_per_second"] = 0
    path = tmp_path / "zero.json"
    path.write_text(json.dumps(doc))
    result = load.load_file(str(path))
    rows = usl.density_table(load.all_points([result]))
    assert rows and all("zero" in a.note for row in rows for a in row.answers.values())
    for args in (("usl", path), ("report", tmp_path / "out", path)):
        proc = main(capsys, *args)
        assert proc.returncode == 0, proc.stderr


# --- duplicates and outputs ---------------------------------------------------------------

@pytest.mark.parametrize("inputs", [[GOOD, GOOD], [REPORT_FIXTURES, GOOD]], ids=["file-twice", "dir-and-file"])
def test_the_same_file_twice_is_an_error(tmp_path, capsys, inputs):
    proc = main(capsys, "report", tmp_path / "out", *inputs)
    assert proc.returncode == 2 and "given more than once" in proc.stderr
    assert main(capsys, "usl", *inputs).returncode == 2
    results, errors = load.load_many(inputs)
    assert [e.reason for e in errors if e.path == GOOD] == ["given more than once"]


def test_output_paths_that_cannot_be_made_are_errors(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [("report", blocker / "sub", GOOD), ("report", blocker, GOOD),
             ("compare", BASE, SLOWER, "--out", blocker / "sub"),
             ("compare", BASE, SLOWER, "--json", tmp_path),
             ("compare", BASE, SLOWER, "--json", blocker / "x.json")]
    for args in cases:
        proc = main(capsys, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert str(args[-1] if args[0] == "compare" else args[1]) in proc.stderr


# --- options ------------------------------------------------------------------------------

@pytest.mark.parametrize("option", [
    ("--threshold", "nan"), ("--threshold", "inf"), ("--threshold", "-5"), ("--threshold", "0"),
    ("--alpha", "2"), ("--alpha", "0"), ("--alpha", "nan"), ("--min-invocations", "-3"),
    ("--min-invocations", "0"), ("--min-invocations", "2.5"), ("--max-cv", "nan"), ("--max-cv", "0"),
    ("--min-effect", "-1"), ("--equivalence", "nan"), ("--equivalence", "-1")])
def test_out_of_range_options_are_usage_errors(capsys, option):
    proc = main(capsys, "compare", BASE, SLOWER, *option)
    assert proc.returncode == 2, proc.stdout
    assert option[0] in proc.stderr and repr(option[1]) in proc.stderr


def test_nan_threshold_cannot_turn_a_regression_into_pass(capsys):
    fail = main(capsys, "compare", BASE, SLOWER, "--threshold", "2.5")
    assert fail.returncode == 1 and "**FAIL**" in fail.stdout
    assert main(capsys, "compare", BASE, SLOWER, "--threshold", "nan").returncode == 2
    with pytest.raises(ValueError, match="threshold"):
        compare.Options(threshold=float("nan"))
    with pytest.raises(ValueError, match="alpha"):
        compare.Options(alpha=2)
    with pytest.raises(ValueError, match="min_invocations"):
        compare.Options(min_invocations=-3)
