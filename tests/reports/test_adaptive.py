"""Issue 23: the run-until-decided A/B loop (adaptive.py) on synthetic invocations, with a fake clock."""

import os
import stat

import numpy as np
import pytest

from conftest import run_cli
from mntscale_reports import adaptive, load
from make_fixtures import context, iteration, result

PARAMS = {"op": "stat", "workers": 1, "placement": "spread", "layers": 10, "binds": 3, "depth": 8, "mode": "thread"}


def invocation(rng, level, cv, noisy=False, reps=2):
    """One invocation of path_walk at containers 1 and 100: its own level drawn with ``cv``."""
    entries = []
    for c in (1, 100):
        mean = level * 1e6 / (1 + 0.01 * (c - 1)) * (1 + cv * rng.standard_normal())
        for k in range(reps):
            e = iteration(rng, "path_walk", dict(PARAMS, containers=c), mean, reps, k, {})
            e["items_per_second"] = mean
            if noisy:
                e["noisy"] = {"other_share": 0.5, "reason": "other tasks ran 50% of the worker CPUs' time"}
            entries.append(e)
    return load.parse("mem.json", result(context("epyc", "6.18.44", False), entries))


class Bench:
    """A fake pair of builds: B at ``factor`` of A; invocation k is noisy when noisy(side, k)."""

    def __init__(self, seed, factor, cv=0.003, noisy=lambda side, k: False, busy_factor=1.3, seconds=6.0):
        self.rng = np.random.default_rng(seed)
        self.factor, self.cv, self.noisy, self.busy_factor = factor, cv, noisy, busy_factor
        self.now, self.seconds, self.calls = 0.0, seconds, []

    def clock(self):
        return self.now

    def measure(self, side, k, only):
        self.now += self.seconds
        self.calls.append(side)
        noisy = self.noisy(side, k)
        level = self.factor if side == "B" else 1.0
        if noisy and side == "B":
            level *= self.busy_factor  # the machine's difference, e.g. B scheduled in its own cgroup
        return [invocation(self.rng, level, self.cv, noisy)]


def _run(bench, **kw):
    return adaptive.run(bench.measure, adaptive.Settings(**kw), clock=bench.clock)


def test_quiet_three_percent_slowdown_is_decided_worse_early():
    bench = Bench(1, 0.97)
    out = _run(bench)
    assert out.stopped == "decided" and not out.undecided, adaptive.summary(out)
    assert [p.verdict for p in out.comparison.points] == ["worse", "worse"], adaptive.summary(out)
    assert out.pairs == 6 and out.seconds <= 300  # 6 + 6 invocations of 6 s: about 72 s
    assert bench.calls[:4] == ["A", "B", "B", "A"]  # interleaved ABBA


def test_noisy_invocations_are_remeasured_and_never_give_the_verdict():
    """B looks 30% faster in its noisy invocations (every other pair). They are left out and
    measured again by later pairs: the verdict is the 3% slowdown, never "better"."""
    bench = Bench(2, 0.97, noisy=lambda side, k: k % 2 == 1)
    out = _run(bench)
    assert all(p.verdict == "worse" for p in out.comparison.points), adaptive.summary(out)
    assert out.noisy_remeasured > 0 and out.pairs > 6
    text = adaptive.summary(out)
    assert f"({out.noisy_remeasured} re-measured by later pairs)" in text, text


def test_a_busy_machine_ends_undecided_at_the_budget_never_better():
    bench = Bench(3, 0.97, noisy=lambda side, k: k % 4 != 0)
    out = _run(bench, budget=120)
    assert out.stopped == "budget" and out.seconds <= 120, out.stopped
    assert not any(p.verdict in ("better", "worse") for p in out.comparison.points)
    text = adaptive.summary(out)
    assert "**UNDECIDED**" in text and "Undecided: needs about" in text, text
    assert "more quiet invocations per side" in text and "measured on a busy machine" in text, text
    assert out.exit_code == adaptive.EXIT_UNDECIDED


def test_keep_noisy_reaches_the_comparison_of_the_loop():
    """ci/nightly --budget --keep-noisy: a deliberate neighbour (the tests' own mount_lock writers)
    flags every invocation noisy; the loop must count them, as compare --keep-noisy does, and
    decide; without it the same invocations are no evidence and it ends undecided."""
    everything = lambda side, k: True  # noqa: E731
    kept = _run(Bench(6, 0.97, noisy=everything, busy_factor=1.0), budget=120, keep_noisy=True)
    assert adaptive.Settings(keep_noisy=True).options().keep_noisy
    assert [p.verdict for p in kept.comparison.points] == ["worse", "worse"], adaptive.summary(kept)
    dropped = _run(Bench(6, 0.97, noisy=everything, busy_factor=1.0), budget=120)
    assert not any(p.verdict in ("better", "worse") for p in dropped.comparison.points)


def test_budget_stops_a_wide_point_and_says_how_many_more():
    bench = Bench(4, 0.99, cv=0.03)
    out = _run(bench, budget=100, resolution=0.5)
    assert out.stopped == "budget" and out.undecided, adaptive.summary(out)
    need = max(s.need_more for s in out.undecided)
    assert need > 1 and f"Undecided: needs about {need} more quiet invocations per side" in adaptive.summary(out)


def test_within_resolution_stops_without_a_verdict():
    """A 0.6% change with a 1% target: the CI narrows below ±1% before it is significant at the
    look's alpha or inside ±1%; the loop stops there instead of spending the budget."""
    out = _run(Bench(5, 1.006, cv=0.004), resolution=1.0)
    assert out.stopped == "decided" and out.seconds < 300, adaptive.summary(out)
    assert {s.state for s in out.states} <= {adaptive.DECIDED, adaptive.RESOLVED}


def test_a_a_rarely_gives_a_verdict():
    """Identical builds, 40 runs of the loop to 48 pairs (a 1.5% CV, a 0.3% target, no practical
    floor, so every look can find "worse"): alpha is split over the looks, so peeking at a growing
    sample does not inflate the false verdicts (these seeds give 0; 3 without the split)."""
    wrong = 0
    for seed in range(40):
        out = _run(Bench(100 + seed, 1.0, cv=0.015, seconds=1.0), budget=600, resolution=0.3, min_effect=0.0)
        wrong += any(p.verdict in ("worse", "better") for p in out.comparison.points)
    assert wrong <= 1, wrong


def test_settings_refuse_nonsense():
    for kw in ({"resolution": 0}, {"budget": float("nan")}, {"max_invocations": 2}):
        with pytest.raises(ValueError):
            adaptive.Settings(**kw)


def test_ab_command_runs_two_commands_until_decided(tmp_path):
    """The plain two-command A/B end to end, with a script standing in for `mntscale run`
    (B 3% slower): exit 1 below a 2% threshold, a/ and b/ hold one file per invocation."""
    script = tmp_path / "fake-run"
    script.write_text(f"""#!{os.sys.executable}
import json, random, sys
sys.path[:0] = {[os.path.dirname(os.path.abspath(__file__)), os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "reports")]!r}
import numpy as np
from make_fixtures import context, iteration, result
factor, out = float(sys.argv[1]), sys.argv[sys.argv.index("--out") + 1]
rng = np.random.default_rng(random.randrange(1 << 30))
m = factor * 1e6 * (1 + 0.003 * rng.standard_normal())
e = [iteration(rng, "path_walk", {{"op": "stat", "workers": 1, "containers": 1, "placement": "spread", "layers": 10,
     "binds": 3, "depth": 8, "mode": "thread"}}, m, 1, 0, {{}})]
e[0]["items_per_second"] = m
json.dump(result(context("epyc", "6.18.44", False), e), open(out, "w"))
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "ab"
    proc = run_cli("ab", "--a", f"{script} 1.0", "--b", f"{script} 0.97", "--out", out, "--threshold", 2)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "**FAIL**" in proc.stdout and "decided: worse" in proc.stdout, proc.stdout
    assert len(os.listdir(out / "a")) == len(os.listdir(out / "b")) >= 4
    assert (out / "ab.json").exists() and "Resolution reached: ±" in (out / "ab.md").read_text()
    bad = run_cli("ab", "--a", "", "--b", "x")
    assert bad.returncode == 2 and "--a" in bad.stderr


@pytest.mark.parametrize("pct", ["x", "0", "97.5", ""])
def test_cpu_quota_refuses_a_bad_percent_before_making_a_cgroup(pct):
    import subprocess
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "cpu-quota")
    r = subprocess.run([script, pct, "true"], capture_output=True, text=True)
    assert r.returncode == 2 and "whole percent" in r.stderr, r.stderr


def test_cpu_quota_runs_in_its_own_cgroup_and_removes_it():
    import glob
    import subprocess
    if os.geteuid() != 0:
        pytest.skip("cpu-quota needs root to make a cgroup")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "cpu-quota")
    r = subprocess.run([script, "50", "sh", "-c", "cat /proc/self/cgroup; exit 3"], capture_output=True, text=True)
    if r.returncode == 77:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 3, r.stdout + r.stderr  # the command's exit code
    names = [line.rsplit("/", 1)[-1] for line in r.stdout.splitlines() if "mntscale-quota-50-" in line]
    assert names, r.stdout  # it ran inside a cgroup of its own
    assert not [p for p in glob.glob("/sys/fs/cgroup/**/" + names[0], recursive=True)], names[0]


def test_cpu_quota_removes_its_cgroup_when_it_gets_sigterm():
    import glob
    import signal
    import subprocess
    import time
    if os.geteuid() != 0:
        pytest.skip("cpu-quota needs root to make a cgroup")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "cpu-quota")
    p = subprocess.Popen([script, "max", "sh", "-c", "cat /proc/self/cgroup; sleep 1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    name = "mntscale-quota-max-%d" % p.pid
    for _ in range(200):  # until the cgroup exists (the command is inside it)
        if glob.glob("/sys/fs/cgroup/**/" + name, recursive=True):
            break
        time.sleep(0.01)
    else:
        out, err = p.communicate()
        if p.returncode == 77:
            pytest.skip(err.strip())
        pytest.fail("no cgroup %s appeared: %s" % (name, out + err))
    p.send_signal(signal.SIGTERM)  # the shell only, as `pkill -f 'mntscale run'` did
    p.communicate(timeout=30)
    assert p.returncode == 143
    assert not glob.glob("/sys/fs/cgroup/**/" + name, recursive=True), name

