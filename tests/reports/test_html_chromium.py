"""Render index.html in headless Chromium: the page loads, with no script or resource errors, and the
screenshot shows the charts (their line colours) and the page's heading text."""

import os
import subprocess
import tempfile

import numpy as np
import pytest
from matplotlib import image as mpimg

CHROMIUM = "/usr/bin/chromium"
ERROR_MARKERS = ("Uncaught", "Failed to load", "ERR_FILE_NOT_FOUND", "Not allowed to load local resource")
# matplotlib's first two cycle colours, which the throughput charts draw their
# lines in; nothing else on the page (text, tables, links) uses them, so their
# pixels in the screenshot mean the chart images were loaded and painted.
CHART_COLOURS = {"C0": "1f77b4", "C1": "ff7f0e"}


def colour_pixels(rgb, hexcolour, tol=0.08):
    want = np.array([int(hexcolour[i:i + 2], 16) / 255 for i in (0, 2, 4)])
    return int((np.abs(rgb - want).max(axis=-1) < tol).sum())


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
    rgb = mpimg.imread(shot)[..., :3]
    assert rgb.shape[:2] == (3000, 1400), rgb.shape
    # The heading: dark text pixels in the top band of an otherwise white page.
    assert (rgb[:60].min(axis=-1) < 0.3).sum() > 200, "no heading text at the top of the page"
    # Several charts are on screen, each with lines in both colours: thousands
    # of pixels (about 6800 and 3900 at this size); a page whose images did not
    # load has none.
    for name, hexcolour in CHART_COLOURS.items():
        n = colour_pixels(rgb, hexcolour)
        assert n > 1000, f"{name} #{hexcolour}: {n} pixels; the chart images did not render"
