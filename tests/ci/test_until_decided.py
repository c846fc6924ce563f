"""ci/nightly --budget (issue 23): undecided points are re-measured until decided or the budget
ends. Unit level: mntscale runs are replaced by synthetic result files (no root needed)."""

import argparse
import os
import sys

import numpy as np

from test_nightly import load_nightly

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "reports"), os.path.join(HERE, "..", "..", "reports")]

from make_fixtures import context, iteration, result  # noqa: E402
from mntscale_reports import adaptive, compare, load  # noqa: E402

PARAMS = {"op": "stat", "workers": 1, "placement": "spread", "layers": 10, "binds": 3, "depth": 8, "mode": "thread"}


def invocation_doc(rng, level, containers=(1, 100), noisy=False):
    entries = []
    for c in containers:
        mean = level * 1e6 / (1 + 0.01 * (c - 1)) * (1 + 0.003 * rng.standard_normal())
        for k in range(2):
            e = iteration(rng, "path_walk", dict(PARAMS, containers=c), mean, 2, k, {})
            e["items_per_second"] = mean
            if noisy:
                e["noisy"] = {"other_share": 0.5, "reason": "other tasks ran 50% of the worker CPUs' time"}
            entries.append(e)
    doc = result(context("epyc", "6.18.44", False), entries)
    doc["context"]["config"]["preset"] = {"id": "test-tiny-v2"}
    return doc


def prepare(tmp_path, monkeypatch, night_noisy, rerun_noisy):
    nightly = load_nightly()
    rng = np.random.default_rng(7)
    base = nightly.merge_invocations([invocation_doc(rng, 1.0) for _ in range(8)])
    night = nightly.merge_invocations([invocation_doc(rng, 0.97, noisy=i in night_noisy) for i in range(4)])
    calls = []

    def fake_run(args, out, extra=()):
        c = int(extra[extra.index("--set") + 1].split("=")[1])
        calls.append(c)
        nightly.write_json(out, invocation_doc(rng, 0.97 * (1.3 if rerun_noisy else 1.0), (c,), rerun_noisy))
        return out

    monkeypatch.setattr(nightly, "run_mntscale", fake_run)
    monkeypatch.setattr(nightly, "scenario_axes", lambda binary: {"path_walk": ["containers"]})
    final = str(tmp_path / "night.json")
    base_result = load.parse(str(tmp_path / "base.json"), base)
    return nightly, night, final, base_result, calls


def test_noisy_night_points_are_remeasured_until_decided(tmp_path, monkeypatch):
    """Tonight's invocations 1 and 3 were noisy (2 quiet of 4: no verdict); the loop measures
    those points again until each has enough quiet invocations, and both come out worse."""
    nightly, night, final, base_result, calls = prepare(tmp_path, monkeypatch, {1, 3}, False)
    settings = adaptive.Settings(budget=600, max_invocations=8, every_round=True)
    doc, outcome, nxt = nightly.until_decided(argparse.Namespace(mntscale="x"), settings, night, final,
                                              str(tmp_path), base_result, 4, {})
    assert outcome.stopped == "decided", adaptive.summary(outcome)
    assert sorted(set(calls)) == [1, 100] and nxt == 4 + len(calls)
    cand = load.parse(final, doc)
    result = compare.compare_results([base_result], [cand], settings.options())
    assert [p.verdict for p in result.points] == ["worse", "worse"], compare.to_markdown(result)


def test_a_busy_night_ends_undecided_never_better(tmp_path, monkeypatch):
    """Every rerun is noisy (and 30% "faster"): no verdict from them; the loop stops at its
    round limit and says how many more quiet invocations each point needs."""
    nightly, night, final, base_result, calls = prepare(tmp_path, monkeypatch, {1, 2, 3}, True)
    settings = adaptive.Settings(budget=600, max_invocations=4, every_round=True)
    doc, outcome, _ = nightly.until_decided(argparse.Namespace(mntscale="x"), settings, night, final,
                                            str(tmp_path), base_result, 4, {})
    assert outcome.stopped == "max invocations" and len(calls) == 8
    assert all(p.verdict == "inconclusive" for p in outcome.comparison.points)
    text = adaptive.summary(outcome)
    assert "Undecided: needs about 3 more quiet invocations per side" in text, text
