"""Report pieces for --waits: the wall-time bars, the lock-wait table, the unsupported parts."""

import os

from conftest import FIXTURES, run_cli
from mntscale_reports import load, waits

WAITS_FIXTURES = os.path.join(FIXTURES, "waits")


def _points():
    results, errors = load.load_many([WAITS_FIXTURES])
    assert not errors
    return load.all_points(results)


def test_segments_add_up_to_wall_time():
    for p in _points():
        d = p.reps[-1]["time_decomposition"]
        for role, r in d["roles"].items():
            total = sum(s for _, s in waits.segments(r)) - max(0.0, r["residual_s"])
            assert abs(total + r["residual_s"] - r["wall_s"]) < 1e-6, role


def test_bars_show_blocked_buckets_and_preemption_per_role():
    by_scenario = waits.bars(_points())
    rows = by_scenario["churn_interference"]
    writer = [segs for name, segs in rows if name.endswith("[writer]")][0]
    labels = [lb for lb, _ in writer]
    assert "blocked: rcu_wait" in labels and "preempted" in labels and labels[0] == "user"
    assert abs(sum(share for _, share in writer) - 1.0) < 0.1


def test_lock_wait_table_lists_named_waits_with_p99():
    t = waits.lock_wait_table(_points())
    assert t.headers[:7] == ["point", "role", "lock (bucket)", "count", "total (s)", "max (s)", "p99 (s)"]
    writer_rcu = [r for r in t.rows if r[1] == "writer" and r[2] == "rcu_wait"]
    assert writer_rcu and int(writer_rcu[0][3]) > 0
    assert all(int(r[3]) > 0 for r in t.rows)  # buckets without waits are left out


def test_support_table_says_what_was_unsupported_and_why():
    rows = waits.support_table(_points()).rows
    parts = {(r[0].split("/")[1], r[1]): r[2] for r in rows}
    assert "absent on this kernel" in parts[("writer_op:bind", "waits.locks")]
    assert "perf_event_paranoid" in parts[("writer_op:bind", "attribution")]
    assert parts[("writer_op:bind", "time_decomposition.kernel_split")].startswith("unsupported")
    assert not any(k[0] == "writer_op:mount" for k in parts)


def test_report_draws_the_bars_and_tables(tmp_path):
    proc = run_cli("report", tmp_path, WAITS_FIXTURES)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "decomposition-churn_interference.png").stat().st_size > 1000
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Where worker time goes" in page and "Lock waits" in page
    assert "Attribution: unsupported parts" in page and "absent on this kernel" in page
