"""Render index.html in headless Chromium: the page loads, with no script or resource errors."""

import os
import subprocess
import tempfile

import pytest

CHROMIUM = "/usr/bin/chromium"
ERROR_MARKERS = ("Uncaught", "Failed to load", "ERR_FILE_NOT_FOUND", "Not allowed to load local resource")


def test_html_chromium_screenshot(report_run, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"chromium not installed: {CHROMIUM} absent (apt-get install chromium)")
    outdir, proc = report_run
    assert proc.returncode == 0, proc.stderr
    shot = tmp_path / "index.png"
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1400,3000",
             f"--screenshot={shot}", f"file://{outdir / 'index.html'}"],
            capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10000, run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if any(m in line for m in ERROR_MARKERS)]
    assert not errors, "\n".join(errors)
