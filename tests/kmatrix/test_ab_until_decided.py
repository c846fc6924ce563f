"""kernel-matrix --baseline/--candidate --budget (issue 23): the A/B runs the reports' adaptive loop.

Unit level: kernels and runs are stand-ins (a real guest run takes minutes); what is checked is
the wiring -- interleaved rounds until decided, noisy rounds re-measured, ab.md / ab.json written,
the exit code of the verdict."""

import json
import os
import sys
from types import SimpleNamespace

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "reports")]

from kmatrix import cli  # noqa: E402
from make_fixtures import context, iteration, result  # noqa: E402

PARAMS = {"op": "stat", "workers": 1, "containers": 1, "placement": "spread", "layers": 10, "binds": 3,
          "depth": 8, "mode": "thread"}


def fake_kernels(monkeypatch, factor_b, noisy_rounds=()):
    rng = np.random.default_rng(3)
    order = []

    def run_native(kernel, opts, out, console):
        side = "B" if kernel.label == "cand" else "A"
        rnd = int(os.path.basename(out)[len("round-"):-len(".json")])
        order.append(side)
        noisy = rnd in noisy_rounds
        mean = 1e6 * (factor_b if side == "B" else 1.0) * (1.3 if noisy and side == "B" else 1.0)
        mean *= 1 + 0.003 * rng.standard_normal()
        e = iteration(rng, "path_walk", dict(PARAMS), mean, 1, 0, {})
        e["items_per_second"] = mean
        if noisy:
            e["noisy"] = {"other_share": 0.5, "reason": "other tasks ran 50% of the worker CPUs' time"}
        with open(out, "w") as f:
            json.dump(result(context("epyc", "6.18.44", False), [e]), f)
        return cli.KernelRun(kernel.spec, kernel.label, "native", ok=True, result=out)

    kernels = [SimpleNamespace(spec=s, label=s, native=True, release="", source="") for s in ("base", "cand")]
    monkeypatch.setattr(cli, "resolve_all", lambda specs, opts: kernels)
    monkeypatch.setattr(cli, "run_native", run_native)
    monkeypatch.setattr(cli, "make_report", lambda outdir, files: None)
    return order


def _opts(tmp_path, *extra):
    return cli.parse(["--baseline", "native", "--candidate", "native", "--binary", "/bin/true",
                      "--out", str(tmp_path / "out"), *extra])


def test_budget_runs_until_decided(tmp_path, monkeypatch):
    order = fake_kernels(monkeypatch, 0.97, noisy_rounds={2, 3})
    opts = _opts(tmp_path, "--budget", "600", "--threshold", "2")
    assert cli.ab(opts) == 1  # worse by 3%, beyond the 2% gate
    ab = json.loads((tmp_path / "out" / "ab.json").read_text())
    assert ab["stopped"] == "decided" and [p["verdict"] for p in ab["points"]] == ["worse"], ab
    assert ab["noisy_remeasured"] == 4 and ab["pairs"] > 6  # the two noisy rounds were made up for
    assert order[:4] == ["A", "B", "B", "A"]
    assert "decided: worse" in (tmp_path / "out" / "ab.md").read_text()


def test_fixed_rounds_still_compare_without_noisy_rounds(tmp_path, monkeypatch):
    """Without --budget: the fixed rounds, and compare leaves the noisy ones out (+30% "better" in
    them): 5 rounds with 2 noisy leave 3 quiet, so no verdict rather than "better"."""
    fake_kernels(monkeypatch, 0.97, noisy_rounds={2, 3})
    opts = _opts(tmp_path, "--rounds", "5")
    assert cli.ab(opts) == 3
    doc = json.loads((tmp_path / "out" / "compare" / "compare.json").read_text())
    assert [p["verdict"] for p in doc["points"]] == ["inconclusive"], doc["points"]
    assert "busy machine" in doc["points"][0]["reason"]


def test_budget_needs_an_ab(tmp_path):
    import pytest
    with pytest.raises(SystemExit):
        cli.parse(["native", "--binary", "/bin/true", "--budget", "60"])
