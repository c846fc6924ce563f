"""ci/nightly end to end: same build twice is "no change"; a slowed candidate fails and is named.

Runs the real mntscale (root needed) on presets/test-tiny-v2.json, a few seconds per run.
The slowed candidate runs while another mount namespace mounts and unmounts tmpfs in a
loop: every mount-table write bumps the global mount_lock sequence, so the candidate's path
walks leave RCU mode (and share the CPUs) — a kernel-side slowdown under identical point
names, which is what a nightly regression looks like.
"""

import json
import os
import subprocess
import tempfile

import pytest

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NIGHTLY = os.path.join(SOURCE, "ci", "nightly")
BINARY = os.environ.get("MNTSCALE_BINARY", os.path.join(SOURCE, "build", "mntscale"))

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mntscale builds real mount namespaces"),
    pytest.mark.skipif(not os.access(BINARY, os.X_OK), reason=f"no mntscale binary at {BINARY}"),
]

# Loose on purpose: this machine is shared and small. The gate logic, not the noise floor,
# is under test.
COMMON = ["--preset", "test-tiny-v2", "--machine", "test-machine", "--commit", "test",
          "--max-cv", "25", "--min-effect", "10", "--threshold", "10", "--no-html"]


def nightly(results, *extra):
    cmd = ["/usr/bin/python3", NIGHTLY, "--mntscale", BINARY, "--results", results, *COMMON, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def stored(results):
    out = []
    for d, _, files in os.walk(results):
        out += [os.path.join(d, f) for f in files if f.endswith(".json") and os.path.dirname(d) != results
                and not f.startswith(("raw", "rerun", "compare"))]
    return sorted(out)


@pytest.fixture(scope="module")
def results():
    with tempfile.TemporaryDirectory(prefix="mntscale-nightly-test.") as d:
        first = nightly(d, "--baseline", "none")
        assert first.returncode == 0, first.stderr
        yield d


def test_layout_names_machine_kernel_date_commit(results):
    files = stored(results)
    assert files, os.listdir(results)
    rel = os.path.relpath(files[0], results).split(os.sep)
    assert rel[0] == "test-machine" and rel[1] == os.uname().release
    assert rel[2].endswith("-test.json") and rel[2][:8].isdigit()
    doc = json.load(open(files[0]))
    assert doc["context"]["config"]["preset"]["id"] == "test-tiny-v2"
    assert doc["context"]["nightly"]["commit"] == "test"


def test_same_build_is_no_change(results):
    r = nightly(results, "--baseline", "latest")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "**PASS**" in r.stdout
    # The gate must not fire on the same build. Two real runs can still
    # differ significantly when the machine drifts between them (a "better"
    # verdict), so the test asks for no regression, not for identical runs.
    assert "0 worse" in r.stdout, r.stdout
    assert "**no change**" in r.stdout or "no change" in r.stdout, r.stdout
    summary = sorted(p for p in (os.path.join(d, "summary.md") for d, _, f in os.walk(results) if "summary.md" in f))
    assert summary


def test_slowed_candidate_fails_and_names_points(results, tmp_path):
    # A baseline from a faster night: the real stored run with every
    # throughput sample raised by half. The candidate is a real run of the
    # same preset, so against that baseline it is about a third slower: a
    # regression the gate must catch whatever the machine's noise.
    doc = json.load(open(stored(results)[0]))
    for b in doc["benchmarks"]:
        for key in ("items_per_second", "ops_per_sec", "ops_per_sec_per_worker"):
            if isinstance(b.get(key), (int, float)):
                b[key] *= 1.5
        if isinstance(b.get("windows"), list):
            b["windows"] = [w * 1.5 for w in b["windows"]]
    baseline = tmp_path / "faster-night.json"
    baseline.write_text(json.dumps(doc))
    r = nightly(results, "--baseline", str(baseline))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "**FAIL: regression**" in r.stdout
    summary_path = next(os.path.join(d, "summary.md") for d, _, f in sorted(os.walk(results), reverse=True)
                        if "summary.md" in f and "compare.json" in f and
                        json.load(open(os.path.join(d, "compare.json")))["gate_failed"])
    summary = open(summary_path).read()
    assert "## Regressed points" in summary
    assert "`path_walk/" in summary.split("## Regressed points")[1]


def test_other_preset_is_not_comparable(results, tmp_path):
    doc = json.load(open(stored(results)[0]))
    doc["context"]["config"]["preset"]["id"] = "other-v9"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    r = nightly(results, "--baseline", str(other), "--reruns", "0")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "not comparable" in r.stderr
