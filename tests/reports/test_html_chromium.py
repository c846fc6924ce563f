"""Render index.html in headless Chromium: the page loads, with no script or resource errors,
and the picture shows the findings block and the plots."""

import os
import subprocess
import tempfile

import numpy as np
import pytest

from conftest import FIXTURES, run_cli

CHROMIUM = "/usr/bin/chromium"
ERROR_MARKERS = ("Uncaught", "Failed to load", "ERR_FILE_NOT_FOUND", "Not allowed to load local resource")
FINDINGS_BACKGROUND = (0xF4, 0xF8, 0xFF)  # html.py's #findings background
PLOT_BLUE, PLOT_ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # the first two kernels' colours


def _screenshot(page, shot, height=3000):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"chromium not installed: {CHROMIUM} absent (scripts/setup.sh --with-browser)")
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", f"--window-size=1400,{height}",
             "--hide-scrollbars", f"--screenshot={shot}", f"file://{page}"],
            capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10000, run.stderr[-2000:]
    return run


def _pixels(shot):
    import matplotlib.image  # the PNG reader that comes with matplotlib
    img = matplotlib.image.imread(str(shot))
    return np.rint(img[:, :, :3] * 255).astype(int)


def _mask(rgb, colour, tol=3):
    return np.all(np.abs(rgb - np.array(colour)) <= tol, axis=2)


def test_html_chromium_screenshot(report_run, tmp_path):
    outdir, proc = report_run
    assert proc.returncode == 0, proc.stderr
    run = _screenshot(outdir / "index.html", tmp_path / "index.png")
    errors = [line for line in run.stderr.splitlines() if any(m in line for m in ERROR_MARKERS)]
    assert not errors, "\n".join(errors)


def test_screenshot_shows_findings_on_top_and_plots(tmp_path):
    """The findings block is a tinted box near the top; below it the plots draw in the kernels' colours."""
    out = tmp_path / "report"
    proc = run_cli("report", out, os.path.join(FIXTURES, "report", "epyc-6.18.json"),
                   os.path.join(FIXTURES, "report", "epyc-6.1-emulated.json"))
    assert proc.returncode == 0, proc.stderr
    shot = tmp_path / "index.png"
    _screenshot(out / "index.html", shot, height=6000)
    rgb = _pixels(shot)
    box = _mask(rgb, FINDINGS_BACKGROUND)
    rows = np.nonzero(box.sum(axis=1) > 400)[0]  # rows where the box spans a good part of the width
    assert rows.size > 40, "no findings block in the picture"
    assert rows.min() < 300, f"findings block starts at y={rows.min()}, not at the top"
    below = rgb[rows.max():]
    for colour in (PLOT_BLUE, PLOT_ORANGE):
        assert _mask(below, colour, tol=8).sum() > 200, f"no plot drawn in {colour} below the findings"
