"""The `report` subcommand end to end: files written, HTML self-contained, tables present."""

import html.parser
import os
import re

from conftest import REPORT_FIXTURES, run_cli

EXPECTED_PLOTS = ["throughput-by-kernel-path_walk", "throughput-by-machine-path_walk", "per-worker-path_walk",
                  "latency-path_walk", "time-split-path_walk", "attribution-ns_create"]


class _Refs(html.parser.HTMLParser):
    """Collects every src/href in a page."""

    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def _html(outdir):
    return (outdir / "index.html").read_text(encoding="utf-8")


def test_report_exits_0_and_names_rejected_files(report_run):
    _, proc = report_run
    assert proc.returncode == 0, proc.stderr
    assert "malformed.json" in proc.stderr and "future-version.json" in proc.stderr


def test_every_plot_written_as_png_and_svg(report_run):
    outdir, _ = report_run
    for stem in EXPECTED_PLOTS:
        for ext in ("png", "svg"):
            path = outdir / f"{stem}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
    pngs = {p[:-4] for p in os.listdir(outdir) if p.endswith(".png")}
    svgs = {p[:-4] for p in os.listdir(outdir) if p.endswith(".svg")}
    assert pngs == svgs


def test_html_references_only_existing_local_files(report_run):
    outdir, _ = report_run
    parser = _Refs()
    parser.feed(_html(outdir))
    assert parser.refs, "no images referenced"
    for ref in parser.refs:
        assert not re.match(r"^[a-z]+:", ref), f"non-local reference {ref}"
        assert (outdir / ref).is_file(), ref


def test_html_has_tables_and_says_what_was_skipped(report_run):
    page = _html(report_run[0])
    for title in ("Result files", "Rejected files", "USL fits", "Container density", "Skipped points",
                  "Measured points"):
        assert f"<h2>{title}</h2>" in page
    assert "unsupported: listmount needs Linux &gt;= 6.8" in page
    assert "cycles: unsupported: no hardware PMU" in page
    assert "skipped — no sweep along workers in this scenario" in page
    assert "(emulated)" in page


def test_skipped_point_never_plotted(report_run):
    outdir, _ = report_run
    assert not any("listmount" in name for name in os.listdir(outdir))


def test_summary_md_has_fits_and_density(report_run):
    summary = (report_run[0] / "summary.md").read_text(encoding="utf-8")
    assert "### USL fits" in summary and "### Container density" in summary
    assert "(measured)" in summary and "(model)" in summary


def test_no_loadable_file_exits_2(tmp_path):
    proc = run_cli("report", tmp_path / "out", os.path.join(REPORT_FIXTURES, "malformed.json"))
    assert proc.returncode == 2
    assert "malformed.json" in proc.stderr


def test_plot_kind_without_data_is_skipped_in_html(tmp_path):
    """The Xeon run carries no latency_ns: its latency plot is replaced by a stated reason."""
    out = tmp_path / "out"
    proc = run_cli("report", out, os.path.join(REPORT_FIXTURES, "xeon-6.18.json"))
    assert proc.returncode == 0, proc.stderr
    page = _html(out)
    assert "skipped — no points carry latency_ns" in page
    assert "skipped — no points carry attribution" not in page


def test_points_measured_on_a_busy_machine_are_flagged_in_the_table():
    """Issue 14: a repetition mntscale flagged "noisy" is named in the measured-points table."""
    import json
    from mntscale_reports import load, tables
    doc = json.load(open(os.path.join(REPORT_FIXTURES, "epyc-6.18.json"), encoding="utf-8"))
    it = [b for b in doc["benchmarks"] if b.get("run_type") == "iteration"]
    it[0]["noisy"] = {"reason": "other tasks took 40% of the worker CPUs"}
    res = load.parse("noisy.json", doc)
    rows = tables.points_table(res.points).rows
    flagged = [r for r in rows if "⚠ noisy in 1/" in r[3]]
    assert len(flagged) == 1, rows
