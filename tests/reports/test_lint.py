"""flake8 finds no real error (pyflakes F, E9, W6; .flake8 at the repository root) in the Python
of reports/, tests/reports/ and scripts/ (files ending in .py and the executables run by python).

Needs Debian's python3-flake8 (scripts/setup.sh); skipped without it.
"""

import os
import subprocess

import pytest

from conftest import ROOT

PY = "/usr/bin/python3"


def python_files():
    """reports/, tests/reports/, scripts/**.py and scripts' executables whose first line names python."""
    found = ["reports", os.path.join("tests", "reports")]
    for base, dirs, files in os.walk(os.path.join(ROOT, "scripts")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(base, name)
            if name.endswith(".py"):
                found.append(os.path.relpath(path, ROOT))
            elif "." not in name:
                with open(path, "rb") as f:
                    first = f.readline(200)
                if first.startswith(b"#!") and b"python" in first:
                    found.append(os.path.relpath(path, ROOT))
    return found


def test_scripts_are_found():
    files = python_files()
    assert "scripts/skip_report.py" in files and "scripts/ab-trials" in files, files


def test_flake8_finds_nothing():
    probe = subprocess.run([PY, "-m", "flake8", "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"{PY} has no flake8 (Debian's python3-flake8, scripts/setup.sh)")
    config = os.path.join(ROOT, ".flake8")
    assert os.path.isfile(config)
    proc = subprocess.run([PY, "-m", "flake8", "--config", config, *python_files()],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, f"flake8 findings:\n{proc.stdout}{proc.stderr}"
