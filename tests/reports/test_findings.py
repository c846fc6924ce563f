"""Findings sentences: present on top of index.html and summary.md, and matching the data."""

import json
import os
import re

import pytest

from conftest import FIXTURES, run_cli
from mntscale_reports import claims, findings, load

DEFAULT_RUN = os.path.join(FIXTURES, "findings", "default-run.json")
LIST = os.path.join(FIXTURES, "list.json")


def _per_worker_means(path):
    """Independent of the package: mean items_per_second / workers per (containers, workers)."""
    sums = {}
    for b in json.load(open(path, encoding="utf-8"))["benchmarks"]:
        key = (b["params"]["containers"], b["params"]["workers"])
        sums.setdefault(key, []).append(b["items_per_second"] / b["params"]["workers"])
    return {k: sum(v) / len(v) for k, v in sums.items()}


@pytest.fixture(scope="module")
def default_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("default")
    proc = run_cli("report", out, DEFAULT_RUN, "--list", LIST)
    assert proc.returncode == 0, proc.stderr
    return out


def _findings(out):
    text = (out / "summary.md").read_text(encoding="utf-8")
    block = text.split("## Findings", 1)[1].split("\n\n", 2)[1]
    return [line[2:] for line in block.splitlines() if line.startswith("- ")]


def test_default_run_says_flat_from_1_to_300_containers_with_the_measured_spread(default_report):
    flat = [s for s in _findings(default_report) if "flat from 1 to 300 containers" in s]
    assert len(flat) == 1, _findings(default_report)
    means = _per_worker_means(DEFAULT_RUN)
    for w in (1, 2):
        series = [means[(c, w)] for c in (1, 10, 100, 300)]
        spread = 100 * (max(series) - min(series)) / (sum(series) / len(series))
        assert spread < findings.FLAT_PCT
        assert f"{spread:.1f}% at workers={w}" in flat[0]


def test_default_run_says_two_workers_lose_per_worker_throughput(default_report):
    sentence = next(s for s in _findings(default_report) if "from 1 to 2 workers" in s)
    assert sentence.startswith("Largest effect: path_walk: per-worker stat throughput falls")
    means = _per_worker_means(DEFAULT_RUN)
    for c in (1, 10, 100, 300):
        change = 100 * (means[(c, 2)] / means[(c, 1)] - 1)
        assert -20 < change < -12  # the fixture: 1.43 -> 1.21 M, -15 % with 1 % noise
        assert f"containers={c}: " in sentence and f"{change:+.1f}% (95% CI" in sentence
    lo, hi = (min(-100 * (1 - means[(c, 2)] / means[(c, 1)]) for c in (1, 10, 100, 300)),
              max(-100 * (1 - means[(c, 2)] / means[(c, 1)]) for c in (1, 10, 100, 300)))
    assert f"falls {-hi:.0f}–{-lo:.0f}% from 1 to 2 workers" in sentence


def test_findings_open_the_html_and_the_summary(default_report):
    page = (default_report / "index.html").read_text(encoding="utf-8")
    assert page.index('<section id="findings">') < page.index("<table")
    assert "flat from 1 to 300 containers" in page
    summary = (default_report / "summary.md").read_text(encoding="utf-8")
    assert summary.index("## Findings") < summary.index("### ")
    assert "Expectations: 1 of 1 hold" in summary and "### Facts: expectations checked" in summary


def test_usl_refuses_the_flat_default_sweep(default_report):
    summary = (default_report / "summary.md").read_text(encoding="utf-8")
    assert summary.count("flat: no saturation in the measured range") >= 2  # both worker counts
    assert "(model)" not in summary


class _Point:
    """A load.Point stand-in built from numbers: params and per-repetition throughputs."""

    def __init__(self, scenario, params, values):
        self.scenario, self.params, self.run_name = scenario, params, f"{scenario}/{json.dumps(params)}"
        self.reps = [{"items_per_second": v, "params": params} for v in values]
        self.source = load.ResultFile("mem.json", {"context": {}})

    group = load.Point.group
    placement = load.Point.placement
    values = load.Point.values
    windows = load.Point.windows


def _sentences(per_container, reps=3, workers=1):
    pts = [_Point("s", {"op": "stat", "containers": c, "workers": workers}, [v * workers] * reps)
           for c, v in per_container.items()]
    return [f.text for f in findings.compute(pts)]


def test_non_monotonic_sweep_is_not_called_a_trend():
    text = _sentences({1: 100.0, 10: 150.0, 100: 90.0})
    assert any("varies by" in s and "not monotonically" in s for s in text), text
    assert not any(re.search(r"\b(grows|falls)\b", s) for s in text), text


def test_one_repetition_gives_no_confidence_interval():
    text = _sentences({1: 100.0, 10: 80.0, 100: 60.0}, reps=1)
    effect = next(s for s in text if "falls 40%" in s)
    assert "one repetition per point: no confidence interval" in effect


def test_per_unit_rate_only_when_a_line_fits():
    linear = next(s for s in _sentences({1: 1000.0, 11: 900.0, 21: 800.0}) if "falls" in s)
    assert "-10 ops/s per container, linear fit R² 1.00" in linear
    curved = next(s for s in _sentences({1: 1000.0, 2: 600.0, 10: 550.0, 100: 500.0}) if "falls" in s)
    assert "not linear in containers" in curved and "per container," not in curved


def test_a_deviating_claim_is_the_first_finding():
    results, _ = load.load_many([DEFAULT_RUN])
    sc = claims.read_list(LIST)
    sc["path_walk"]["claims"][0]["within_pct"] = 0.5
    out = findings.compute(load.all_points(results), claims.evaluate(results, {"path_walk": sc["path_walk"]}))
    assert out[0].text.startswith("Deviates from expectation") and "spread ≤ 0.5%" in out[0].text


def test_a_linear_fact_states_its_rate():
    facts = os.path.join(FIXTURES, "claims", "facts.json")
    results, _ = load.load_many([facts])
    sc = claims.read_list(LIST)
    out = [f.text for f in findings.compute(load.all_points(results),
                                            claims.evaluate(results, {"copy_tree": sc["copy_tree"]}))]
    rate = next(t for t in out if t.startswith("copy_tree"))
    assert "copy_tree is linear in mounts, as expected: slope 1.79 µs/mount, R² 1.000 on 4 points" in rate


def test_string_counts_in_params_are_rejected_not_guessed():
    """The result schema types the count axes: "300" for containers is a bad file (rejected with a
    reason by the loader), never silently sorted as text."""
    doc = json.load(open(DEFAULT_RUN, encoding="utf-8"))
    for b in doc["benchmarks"]:
        b["params"] = {k: str(v) for k, v in b["params"].items()}
    with pytest.raises(load.LoadError, match="containers"):
        load.parse("strings.json", doc)


def test_report_without_a_usable_list_says_why_and_still_reports(tmp_path):
    proc = run_cli("report", tmp_path / "out", DEFAULT_RUN, "--mntscale", tmp_path / "no-such-binary")
    assert proc.returncode == 0 and "expectations not checked" in proc.stderr
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "- Expectations not checked: " in summary and "no-such-binary" in summary
    assert "### Facts" not in summary
