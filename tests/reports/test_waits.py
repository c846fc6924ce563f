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


def test_storm_wait_plot_per_strategy_against_layers(tmp_path):
    """The start storm's namespace_sem and RCU waits per start, against layers, one line pair per
    strategy. The fixture is a real `run --scenario container_start_storm --set
    strategy=per-layer-idmap --set layers=50 --waits` on 6.18; a second strategy and layer count
    are made from it by editing params and halving the waits."""
    import copy
    import json
    path = os.path.join(FIXTURES, "storm-waits", "per-layer-50.json")
    doc = json.load(open(path, encoding="utf-8"))
    it = [b for b in doc["benchmarks"] if b.get("run_type") == "iteration"]
    extra = []
    for strategy, layers, scale in (("per-layer-idmap", 5, 0.5), ("parent-idmap", 50, 0.25)):
        b = copy.deepcopy(it[0])
        b["params"].update(strategy=strategy, layers=layers)
        b["run_name"] = b["name"] = f"container_start_storm/strategy:{strategy}/layers:{layers}/parallel:2/starts:20"
        for r in b["time_decomposition"]["roles"].values():
            r["blocked_s"] = {k: v * scale for k, v in r["blocked_s"].items()}
        extra.append(b)
    doc["benchmarks"] += extra
    series = waits.storm_waits(load.parse("storm.json", doc).points)
    assert sorted(series) == ["parent-idmap", "per-layer-idmap"]
    per_layer = series["per-layer-idmap"]
    assert [x for x, _, _ in per_layer] == [5, 50]
    assert per_layer[1][1] > 0 and abs(per_layer[0][1] - per_layer[1][1] / 2) < 1e-12
    plots = waits.storm_wait_plot(load.parse("storm.json", doc).points, str(tmp_path))
    assert plots and (tmp_path / plots[0].image).is_file()
