"""qualify end to end on real runs: a candidate slowed by a real perturbation is not qualified
and its points are named; the same build against itself is never "not qualified".

Runs the real mntscale (root needed) on presets/test-tiny-v2.json (path_walk at 1 and 10
containers, a few seconds per invocation). Three sides of INVOCATIONS invocations each,
interleaved (ref, same, slowed, ref, same, slowed, ...) so host drift lands on all alike:
the reference, the same build again, and the same build while WRITERS other mount
namespaces toggle a mount read-only and back as fast as they can
(tests/ci/mount_lock_writer.py): each toggle takes mount_lock for writing, so the
candidate's RCU path walks fail to legitimize and redo the walk with references, and the
writers take CPU time from the workers. One writer cost path_walk 14-20 % here (CI of the
change reaching -6 %, q = 0.038 with 8 invocations per side: too close to call reliably on
this shared machine), so the test runs two.
"""

import os
import signal
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
REPORT = os.path.join(SOURCE, "reports", "mntscale_report.py")
WRITER = os.path.join(SOURCE, "tests", "ci", "mount_lock_writer.py")
BINARY = os.environ.get("MNTSCALE_BINARY", os.path.join(SOURCE, "build", "mntscale"))
WRITERS = 2
INVOCATIONS = 8  # with 5 against 5 one overlapping invocation already makes p 0.03
# Loose on purpose (shared 2-vCPU machine, see tests/ci/test_nightly.py): the verdict logic is
# under test, not this machine's noise floor. The writer costs well over the 5 % gate.
# --keep-noisy: the writers are a neighbour made on purpose and this machine is shared (see
# tests/ci/test_nightly.py's COMMON); noisy invocations left out: tests/reports/test_busy.py.
GATE = ["--threshold", "5", "--max-cv", "25", "--keep-noisy"]
SAME_BUILD_GATE = ["--threshold", "25", "--equivalence", "25", "--max-cv", "25", "--keep-noisy"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mntscale builds real mount namespaces"),
    pytest.mark.skipif(not os.access(BINARY, os.X_OK), reason=f"no mntscale binary at {BINARY}"),
]


def _run(out):
    r = subprocess.run([BINARY, "run", "--preset", "test-tiny-v2", "--out", out],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def _slowed(out):
    writers = [subprocess.Popen(["unshare", "-m", "--propagation", "private", "/usr/bin/python3", WRITER],
                                stdout=subprocess.PIPE, text=True, start_new_session=True) for _ in range(WRITERS)]
    try:
        for w in writers:
            assert w.stdout.readline().strip() == "ready"
        _run(out)
    finally:
        for w in writers:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait()


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    root = tmp_path_factory.mktemp("qualify-real")
    for side in ("ref", "same", "slowed"):
        (root / side).mkdir()
    for i in range(1, INVOCATIONS + 1):
        _run(str(root / "ref" / f"inv-{i}.json"))
        _run(str(root / "same" / f"inv-{i}.json"))
        _slowed(str(root / "slowed" / f"inv-{i}.json"))
    return root


def _qualify(candidate, reference, *extra):
    return subprocess.run([sys.executable, REPORT, "qualify", str(candidate), "--reference", str(reference),
                           "--no-facts", *extra], capture_output=True, text=True, timeout=300)


def test_slowed_candidate_is_not_qualified_and_named(sides):
    r = _qualify(sides / "slowed", sides / "ref", *GATE)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "**NOT QUALIFIED** (exit 1)" in r.stdout
    named = [line for line in r.stdout.splitlines() if line.startswith("- `path_walk/") and "regressed" in line]
    assert named, r.stdout


def test_same_build_is_never_not_qualified(sides):
    r = _qualify(sides / "same", sides / "ref", *SAME_BUILD_GATE)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    assert "**QUALIFIED**" in r.stdout or "**INCONCLUSIVE**" in r.stdout


def test_too_few_invocations_is_inconclusive_with_the_count(sides, tmp_path):
    for side in ("ref", "same"):
        (tmp_path / side).mkdir()
        for i in (1, 2):
            os.link(sides / side / f"inv-{i}.json", tmp_path / side / f"inv-{i}.json")
    r = _qualify(tmp_path / "same", tmp_path / "ref", *SAME_BUILD_GATE)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "needs about 4 invocations per side (has 2)" in r.stdout
    assert "run the preset test-tiny-v2 on each side until each has 4 invocations (2 more per side" in r.stdout
