"""ci/nightly end to end: the same build twice is "no change"; a slowed candidate fails and is named.

Runs the real mntscale (root needed) on presets/test-tiny-v2.json: 8 invocations of a few
seconds each per night. The slowed candidate is a real run of the same build and preset
while another mount namespace toggles a mount read-only and back as fast as it can
(mount_lock_writer.py): every toggle takes mount_lock for writing, so the candidate's RCU
path walks fail to legitimize and redo the walk with references. A kernel-side slowdown
under identical point names: what a nightly regression looks like. On this 2-vCPU machine
it costs path_walk about 38 %; the test measures what it costs on the machine it runs on
and sizes the regression gate from that (writer_loss), rather than trusting the 38 %.

Why the same-build night is not gated at production's 5 %: whole nights drift on this
shared machine (a same-build night once came out at -8 %, CI to -15 %), and that drift is
between nights, so more invocations inside a night narrow the CI around a shifted mean
without bringing it inside ±5 %. The test holds at 25 %, the margin that drift stays in;
production runs on a quiet, dedicated machine.

Time: every nightly() call is bounded by NIGHT_TIMEOUT_S and this file runs at most
five nights (three full, one of one invocation, one of three), so tests/CMakeLists.txt's
ctest TIMEOUT for ci.nightly (1800 s) is above 5 x NIGHT_TIMEOUT_S.
"""

import importlib.machinery
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
NIGHTLY = os.path.join(SOURCE, "ci", "nightly")
BINARY = os.environ.get("MNTSCALE_BINARY", os.path.join(SOURCE, "build", "mntscale"))

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mntscale builds real mount namespaces"),
    pytest.mark.skipif(not os.access(BINARY, os.X_OK), reason=f"no mntscale binary at {BINARY}"),
]

# Loose on purpose: this machine is shared and small, and the gate logic, not its noise floor,
# is under test. With 8 invocations a night this machine resolves about ±8 %, and whole nights
# drift: CI once saw a same-build night at -8 % with its CI reaching -15 %. So the same-build
# check asks "no change" to rule out a 25 % change (SAME_BUILD_GATE); the slowed candidate,
# which loses about 38 %, is judged against the tighter 15 % gate (REGRESSION_GATE).
# --keep-noisy: the slowdown here is a neighbour made on purpose (mount_lock writers in other
# processes), which mntscale rightly flags noisy, and this machine is shared, so without it every
# night would be "inconclusive: measured on a busy machine". These tests check the gate's
# logic; leaving noisy invocations out is tested on recorded fixtures (tests/reports/test_busy.py)
# and in the adaptive loop (tests/ci/test_until_decided.py).
COMMON = ["--preset", "test-tiny-v2", "--machine", "test-machine", "--commit", "test",
          "--max-cv", "25", "--no-html", "--keep-noisy"]
SAME_BUILD_GATE = ["--min-effect", "25", "--threshold", "25"]
# The slowed candidate's gate: 15 %, or less when the writer costs less here (see writer_loss).
REGRESSION_GATE_PCT = 15
NIGHT_TIMEOUT_S = 300


def nightly(results, *extra):
    cmd = ["/usr/bin/python3", NIGHTLY, "--mntscale", BINARY, "--results", results, *COMMON, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=NIGHT_TIMEOUT_S)


def start_writers(n):
    """n mount_lock writers, each in its own private mount namespace."""
    writers = []
    try:
        for _ in range(n):
            w = subprocess.Popen(["unshare", "-m", "--propagation", "private", "/usr/bin/python3",
                                  os.path.join(HERE, "mount_lock_writer.py")],
                                 stdout=subprocess.PIPE, text=True, start_new_session=True)
            writers.append(w)
            assert w.stdout.readline().strip() == "ready"
    except BaseException:
        stop_writers(writers)
        raise
    return writers


def stop_writers(writers):
    for w in writers:
        os.killpg(w.pid, signal.SIGKILL)
        w.wait()


def tiny_path_walk(out):
    """Median path_walk throughput of one short run of the test preset's first point."""
    subprocess.run([BINARY, "run", "--scenario", "path_walk", "--containers", "1", "--workers", "1",
                    "--op", "stat", "--profile", "minimal", "--warmup", "0.05", "--window", "0.1",
                    "--windows", "4", "--repetitions", "3", "--quiet", "--out", out],
                   check=True, capture_output=True, timeout=120)
    doc = json.load(open(out))
    return statistics.median(b["items_per_second"] for b in doc["benchmarks"] if b["run_type"] == "iteration")


def writer_loss(tmp, n):
    """Percent of path_walk throughput n writers cost on this machine now: alternating
    runs without and with them, medians compared."""
    free, slowed = [], []
    for i in range(2):
        free.append(tiny_path_walk(os.path.join(tmp, f"free-{n}-{i}.json")))
        writers = start_writers(n)
        try:
            slowed.append(tiny_path_walk(os.path.join(tmp, f"slowed-{n}-{i}.json")))
        finally:
            stop_writers(writers)
    return 100.0 * (1.0 - statistics.median(slowed) / statistics.median(free))


def sized_perturbation(tmp, want=30.0):
    """(writers, loss): the fewest writers, up to one per CPU, that cost path_walk at
    least `want` percent here and now; a loaded machine dilutes one writer's effect."""
    n, loss = 1, writer_loss(tmp, 1)
    while loss < want and n < (os.cpu_count() or 1):
        n += 1
        loss = writer_loss(tmp, n)
    return n, loss


def stored(results):
    """The nights: RESULTS/<machine>/<kernel>/<night>.json, not their artifacts."""
    out = []
    for d, _, files in os.walk(results):
        if os.path.relpath(d, results).count(os.sep) == 1:
            out += [os.path.join(d, f) for f in files if f.endswith(".json")]
    return sorted(out)


def load_nightly():
    """ci/nightly as a module (it has no .py suffix), with ci/ first on the path as when it runs as a
    script, so its mntscale_reports (ci/mntscale_reports, a link to reports/) is the checkout's."""
    if sys.path[0] != os.path.dirname(NIGHTLY):
        sys.path.insert(0, os.path.dirname(NIGHTLY))
    loader = importlib.machinery.SourceFileLoader("nightly", NIGHTLY)
    spec = importlib.util.spec_from_loader("nightly", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def artifacts(night):
    return night[:-len(".json")] + ".artifacts"


@pytest.fixture(scope="module")
def results():
    with tempfile.TemporaryDirectory(prefix="mntscale-nightly-test.") as d:
        first = nightly(d, "--baseline", "none")
        assert first.returncode == 0, first.stderr
        yield d


def test_layout_names_machine_kernel_date_commit(results):
    files = stored(results)
    assert len(files) == 1, files
    rel = os.path.relpath(files[0], results).split(os.sep)
    assert rel[0] == "test-machine" and rel[1] == os.uname().release
    assert rel[2].endswith("-test.json") and rel[2][:8].isdigit()
    doc = json.load(open(files[0]))
    assert doc["context"]["config"]["preset"]["id"] == "test-tiny-v2"
    assert doc["context"]["nightly"]["commit"] == "test"
    # One night is eight independent invocations, each kept, each repetition tagged.
    assert doc["context"]["nightly"]["invocations"] == 8
    assert {b["invocation"] for b in doc["benchmarks"]} >= set(range(8))
    for k in range(1, 9):
        assert os.path.isfile(os.path.join(artifacts(files[0]), f"invocation-{k}.json"))


def test_same_build_is_no_change(results):
    r = nightly(results, "--baseline", "latest", *SAME_BUILD_GATE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "**PASS**" in r.stdout
    assert "0 worse, 0 better" in r.stdout, r.stdout
    assert "overall: **no change**" in r.stdout, r.stdout
    night = stored(results)[-1]
    assert json.load(open(night))["context"]["nightly"]["gate"] == "pass"
    summary = open(os.path.join(artifacts(night), "summary.md")).read()
    assert "overall: **no change**" in summary and "## Regressed points" not in summary
    cmp = json.load(open(os.path.join(artifacts(night), "compare.json")))
    assert cmp["sampling_unit"] == "invocation"
    assert all(p["n_a"] >= 8 and p["n_b"] >= 8 for p in cmp["points"])
    # "no change" was earned: each point's CI lies inside the ±25 % margin.
    assert all(-25 < p["ci_low"] and p["ci_high"] < 25 for p in cmp["points"]), cmp["points"]


def test_slowed_candidate_fails_and_names_points(results, tmp_path):
    baseline = stored(results)[0]
    # Size the slowdown and the gate by what the writers cost here and now: enough writers
    # for a 30 % loss, and a gate at half the loss, at most 15 %, and not below the ~8 %
    # this machine resolves with 8 invocations.
    n, loss = sized_perturbation(str(tmp_path))
    gate = min(REGRESSION_GATE_PCT, loss / 2)
    if gate < 8:
        pytest.skip(f"{n} mount_lock writer(s) cost path_walk only {loss:.0f} % on this machine now"
                    f" (one costs ~38 % on an idle 2-vCPU VM): too little to show against night-to-night noise")
    writers = start_writers(n)
    try:
        r = nightly(results, "--baseline", baseline, "--reruns", "0",
                    "--min-effect", f"{gate:.1f}", "--threshold", f"{gate:.1f}")
    finally:
        stop_writers(writers)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "**FAIL: regression**" in r.stdout
    night = stored(results)[-1]
    summary = open(os.path.join(artifacts(night), "summary.md")).read()
    assert "## Regressed points" in summary
    regressed = summary.split("## Regressed points")[1].split("##")[0]
    assert "`path_walk/" in regressed
    # A failed night is never tomorrow's baseline: `latest` is the last known good night.
    assert json.load(open(night))["context"]["nightly"]["gate"] == "fail"
    latest = load_nightly().find_latest(results, "test-machine", "test-tiny-v2", exclude="")
    assert latest and latest != night
    assert json.load(open(latest))["context"]["nightly"]["gate"] in ("pass", "no baseline")


def test_other_preset_is_not_comparable(results, tmp_path):
    doc = json.load(open(stored(results)[0]))
    doc["context"]["config"]["preset"]["id"] = "other-v9"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    r = nightly(results, "--baseline", str(other), "--reruns", "0", "--invocations", "1")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "not comparable" in r.stderr


def test_bad_invocations_is_refused_before_running(results, tmp_path):
    r = nightly(str(tmp_path), "--invocations", "0")
    assert r.returncode == 2 and "--invocations 0" in r.stderr
    assert not os.listdir(tmp_path)


def test_failed_invocation_keeps_the_finished_ones_marked_incomplete(tmp_path):
    # A binary that works once, then fails: the night keeps invocation 1, marked incomplete.
    count = tmp_path / "count"
    wrapper = tmp_path / "mntscale"
    wrapper.write_text(f"""#!/bin/bash
n=$(( $(cat {count} 2>/dev/null || echo 0) + 1 )); echo $n > {count}
[ $n -le 1 ] || {{ echo "injected failure" >&2; exit 1; }}
exec {BINARY} "$@"
""")
    wrapper.chmod(0o755)
    res = tmp_path / "results"
    cmd = ["/usr/bin/python3", NIGHTLY, "--mntscale", str(wrapper), "--results", str(res), *COMMON,
           "--baseline", "none", "--invocations", "3"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=NIGHT_TIMEOUT_S)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "injected failure" in r.stderr and "marked incomplete" in r.stderr
    [night] = stored(str(res))
    doc = json.load(open(night))
    assert doc["complete"] is False
    assert {b["invocation"] for b in doc["benchmarks"]} == {0}


def test_merge_tags_invocations_and_lists_a_skipped_point_once():
    def doc():
        return {"context": {}, "complete": True, "benchmarks": [
            {"run_name": "a", "run_type": "iteration"},
            {"run_name": "b", "run_type": "iteration", "skipped": "unsupported: listmount needs Linux >= 6.8"},
            {"run_name": "a", "run_type": "aggregate", "aggregate_name": "mean"}]}
    night = load_nightly().merge_invocations([doc(), doc(), doc()])
    assert [(b["run_name"], b["invocation"]) for b in night["benchmarks"]] == [("a", 0), ("b", 0), ("a", 1), ("a", 2)]
    assert night["complete"] is True


def test_rerun_arguments_come_from_params_and_list_json_not_run_name():
    """Regression: reruns rebuilt --set arguments by splitting run_name strings. They now take the
    scenario's axis names from `mntscale list --json` and the values from the result's params, so
    a run_name that says something else (or an alias spelling) cannot leak into the rerun."""
    import types
    nightly = load_nightly()
    axes_of = nightly.scenario_axes(BINARY)
    assert axes_of["path_walk"] == ["layers", "containers", "workers", "op"]
    point = types.SimpleNamespace(scenario="path_walk", run_name="path_walk/misleading:1/x:y",
                                  params={"layers": 8, "containers": 100, "workers": 2, "op": "stat",
                                          "profile": "k8s-default", "mode": "thread", "binds": 5})
    assert nightly.rerun_args(axes_of, point) == [
        "--scenario", "path_walk", "--set", "layers=8", "--set", "containers=100",
        "--set", "workers=2", "--set", "op=stat"]
