"""reports/ is a Python package (issue 27): pip builds it from reports/pyproject.toml, offline,
into a temporary directory, and the installed `mntscale-report` command works from there,
with the data files it needs (the schemas) shipped inside the package.

Nothing is installed into the system site-packages: `pip install --target TMP`.
Needs Debian's python3-pip and python3-setuptools (scripts/setup.sh); skipped without them.
"""

import os
import shutil
import subprocess

import pytest

from conftest import REPORT_FIXTURES, REPORTS

PY = "/usr/bin/python3"


def _missing():
    for module, package in (("pip", "python3-pip"), ("setuptools", "python3-setuptools")):
        probe = subprocess.run([PY, "-c", f"import {module}"], capture_output=True, text=True)
        if probe.returncode != 0:
            return f"{PY} has no {module} (Debian's {package}, scripts/setup.sh)"
    return None


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """reports/ built and installed with pip into a fresh directory: that directory."""
    why = _missing()
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("pkg")
    # A copy, so that the in-place build leaves nothing in the checkout; the copy follows
    # symbolic links (schemas/*.json -> docs/), as an sdist would.
    src = tmp / "src"
    shutil.copytree(REPORTS, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    site = tmp / "site"
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1")
    proc = subprocess.run([PY, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps",
                           "--no-cache-dir", "--disable-pip-version-check", "--target", str(site), str(src)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp)
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    return site


def _run(site, *args):
    """Run with only SITE added to the path, from a directory outside the checkout."""
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([*map(str, args)], capture_output=True, text=True, timeout=300, env=env, cwd=site.parent)


def test_pyproject_is_there():
    assert os.path.isfile(os.path.join(REPORTS, "pyproject.toml"))


def test_console_script_runs(installed):
    script = installed / "bin" / "mntscale-report"
    assert script.is_file(), sorted(p.name for p in installed.iterdir())
    proc = _run(installed, script, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "capacity" in proc.stdout and "compare" in proc.stdout


def test_module_runs_from_the_install(installed):
    proc = _run(installed, PY, "-c", "import mntscale_reports.cli as c, sys; print(c.__file__); "
                                     "sys.exit(c.main(['--help']))")
    assert proc.returncode == 0, proc.stderr
    where = proc.stdout.splitlines()[0]
    assert where.startswith(str(installed)), f"imported from {where}, not from the install"


def test_not_installed_in_the_system(installed):
    proc = subprocess.run([PY, "-c", "import mntscale_reports"], capture_output=True, text=True,
                          cwd=installed.parent, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode != 0, "mntscale_reports is importable without the temporary directory"


def test_schemas_are_shipped_and_used(installed):
    for name in ("results-schema.json", "capacity-schema.json"):
        schema = installed / "mntscale_reports" / "schemas" / name
        assert schema.is_file() and not schema.is_symlink(), name
    # `usl` loads result files, which checks them against the shipped schema.
    fixture = os.path.join(REPORT_FIXTURES, "xeon-6.18.json")
    proc = _run(installed, installed / "bin" / "mntscale-report", "usl", fixture)
    assert proc.returncode == 0, proc.stderr
    assert "rejected" not in proc.stderr



def test_templates_are_shipped(installed, tmp_path):
    # capacity --out checks the file against the shipped capacity schema and renders index.html
    # through the installed templates/ (base.html).
    fixture = os.path.join(os.path.dirname(REPORT_FIXTURES), "capacity", "slo-per-layer.json")
    proc = _run(installed, installed / "bin" / "mntscale-report", "capacity", fixture, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<h1>mntscale capacity</h1>" in page
