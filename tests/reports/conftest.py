"""Shared helpers for the report tests: import path, CLI runner, a report built once."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REPORTS = os.path.join(ROOT, "reports")
SCRIPT = os.path.join(REPORTS, "mntscale_report.py")
FIXTURES = os.path.join(HERE, "fixtures")
REPORT_FIXTURES = os.path.join(FIXTURES, "report")
COMPARE_FIXTURES = os.path.join(FIXTURES, "compare")

sys.path[:0] = [REPORTS, HERE]


def run_cli(*args):
    """Run the entry point as a user would (shebang interpreter), capturing output."""
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def report_run(tmp_path_factory):
    """`report` over the whole fixture directory, built once: (outdir, completed process)."""
    outdir = tmp_path_factory.mktemp("report")
    return outdir, run_cli("report", outdir, REPORT_FIXTURES)
