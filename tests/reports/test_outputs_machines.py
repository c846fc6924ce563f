"""Issue 28: every report command checks its outputs and numbers alike, and groups by machine.

- One output check serves every command: an existing file, /proc/x, '' or a FIFO where output
  goes exits 2 with one line naming the option, before any input is read, and leaves the path as
  it was (before, qualify and claims ended in FileExistsError / FileNotFoundError tracebacks).
- qualify's numbers go through the typed parsers (--threshold inf and --alpha 2 were ValueError
  tracebacks).
- machines and qualify read context.machine and the kernel from each file: a side mixing machines
  is refused, sides on different machines need qualify --cross-machine, and mixed kernels are
  warned about (before, a directory of two machines was one machine named after the folder).
"""

import json
import os
import shutil

import pytest

from conftest import COMPARE_FIXTURES, FIXTURES
from mntscale_reports import cli

BASE, SAME = os.path.join(COMPARE_FIXTURES, "base"), os.path.join(COMPARE_FIXTURES, "same")
HOST_A, HOST_B = os.path.join(FIXTURES, "machines", "hostA"), os.path.join(FIXTURES, "machines", "hostB")
CAPACITY = os.path.join(FIXTURES, "capacity", "slo-per-layer.json")
LIST = os.path.join(FIXTURES, "list.json")


class Ran:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def main(capsys, *args):
    """The CLI in this process; an exception (a traceback for the user) fails the test."""
    try:
        rc = cli.main([str(a) for a in args])
    except SystemExit as e:  # argparse's usage errors
        rc = e.code
    out = capsys.readouterr()
    return Ran(rc, out.out, out.err)


# Each command with the option its output goes to: (args before the output, option, kind).
COMMANDS = {
    "report": (lambda: ["report"], None, "directory"),  # OUTDIR is positional, inputs after it
    "compare-out": (lambda: ["compare", BASE, SAME], "--out", "directory"),
    "compare-json": (lambda: ["compare", BASE, SAME], "--json", "file"),
    "machines": (lambda: ["machines", HOST_A, HOST_B], "--out", "directory"),
    "capacity": (lambda: ["capacity", CAPACITY], "--out", "directory"),
    "qualify": (lambda: ["qualify", SAME, "--reference", BASE, "--no-facts"], "--out", "directory"),
    "claims": (lambda: ["claims", BASE, "--list", LIST], "--out", "directory"),
}


def _args(name, target):
    head, option, _ = COMMANDS[name]
    if option is None:
        return head() + [target, BASE]
    return head() + [option, target]


def _targets(tmp_path, kind):
    """Paths no output may go to, each made here: name -> path."""
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    os.symlink(tmp_path / "nowhere", link)
    targets = {"proc": "/proc/x", "empty": "", "fifo": fifo, "under-a-file": a_file / "sub"}
    if kind == "directory":
        targets["a-file"] = a_file
    else:
        targets.update({"directory": tmp_path, "symlink": link, "device": "/dev/null"})
    return targets


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_refuses_unusable_outputs_with_one_line(tmp_path, capsys, name):
    for label, target in _targets(tmp_path, COMMANDS[name][2]).items():
        proc = main(capsys, *_args(name, target))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (label, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("mntscale_report: "), (label, proc.stderr)
        assert repr(str(target)) in lines[0], (label, lines)
        assert "Traceback" not in proc.stderr and not proc.stdout, label
    assert (tmp_path / "a-file").read_text() == "keep me\n"
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


@pytest.mark.parametrize("name", sorted(n for n in COMMANDS if COMMANDS[n][2] == "directory"))
def test_a_fifo_where_a_directory_output_writes_a_file_is_refused(tmp_path, capsys, name):
    """A FIFO named like a file the command writes in its directory would block the write forever."""
    out = tmp_path / "out"
    out.mkdir()
    for written in ("index.html", "compare.md", "qualify.md", "facts.md"):
        os.mkfifo(out / written)
    proc = main(capsys, *_args(name, out))
    assert proc.returncode == 2 and "a FIFO" in proc.stderr, proc.stderr


@pytest.mark.parametrize("option", [
    ("--threshold", "inf"), ("--threshold", "nan"), ("--threshold", "-1"), ("--alpha", "2"), ("--alpha", "inf"),
    ("--alpha", "0"), ("--max-cv", "inf"), ("--equivalence", "inf"), ("--min-invocations", "1"),
    ("--min-invocations", "1e9")])
def test_qualify_numbers_go_through_the_typed_parsers(capsys, option):
    proc = main(capsys, "qualify", SAME, "--reference", BASE, "--no-facts", *option)
    assert proc.returncode == 2, proc.stdout
    assert option[0] in proc.stderr and repr(option[1]) in proc.stderr


# --- machines and kernels -------------------------------------------------------------------------

def _copy(src, dst, machine=None, kernel=None, only=None):
    """Copy result files, rewriting context.machine.name / kernel.release; returns dst."""
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src))[:only]:
        with open(os.path.join(src, name), encoding="utf-8") as f:
            doc = json.load(f)
        if machine:
            doc["context"].setdefault("machine", {})["name"] = machine
        if kernel:
            doc["context"]["kernel"]["release"] = kernel
        with open(os.path.join(dst, name), "w", encoding="utf-8") as f:
            json.dump(doc, f)
    return dst


def test_machines_refuses_a_directory_of_two_machines(tmp_path, capsys):
    mixed = tmp_path / "mixed"
    shutil.copytree(HOST_A, mixed)
    b_file = sorted(f for f in os.listdir(HOST_B) if f.endswith(".json"))[0]
    shutil.copy(os.path.join(HOST_B, b_file), mixed / ("b-" + b_file))
    proc = main(capsys, "machines", mixed, HOST_B)
    assert proc.returncode == 2, proc.stdout
    assert "2 machines" in proc.stderr and "hostA" in proc.stderr and "hostB" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_machines_warns_when_a_directory_mixes_kernels(tmp_path, capsys):
    a = _copy(HOST_A, tmp_path / "hostA")
    _copy(HOST_A, tmp_path / "other", kernel="6.1.0-other", only=1)
    os.replace(next((tmp_path / "other").iterdir()), a / "zz-other-kernel.json")
    proc = main(capsys, "machines", a, HOST_B, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "mixes kernels" in proc.stderr and "6.1.0-other" in proc.stderr
    assert "mixes kernels" in (tmp_path / "out" / "summary.md").read_text()


def test_qualify_refuses_sides_of_different_machines_without_cross_machine(tmp_path, capsys):
    other = _copy(SAME, tmp_path / "other-machine", machine="xeon-1s")
    proc = main(capsys, "qualify", other, "--reference", BASE, "--no-facts")
    assert proc.returncode == 2, proc.stdout
    assert "'epyc-2s'" in proc.stderr and "'xeon-1s'" in proc.stderr and "--cross-machine" in proc.stderr
    said = main(capsys, "qualify", other, "--reference", BASE, "--no-facts", "--cross-machine")
    assert said.returncode in (0, 3), said.stderr
    assert "warning" in said.stderr and "'xeon-1s'" in said.stderr


def test_qualify_refuses_a_side_mixing_machines_and_warns_about_mixed_kernels(tmp_path, capsys):
    mixed = _copy(SAME, tmp_path / "mixed")
    _copy(SAME, tmp_path / "x", machine="xeon-1s", only=1)
    os.replace(next((tmp_path / "x").iterdir()), mixed / "zz-xeon.json")
    proc = main(capsys, "qualify", mixed, "--reference", BASE, "--no-facts", "--cross-machine")
    assert proc.returncode == 2 and "candidate mixes results of 2 machines" in proc.stderr, proc.stderr
    kernels = _copy(SAME, tmp_path / "kernels")
    _copy(SAME, tmp_path / "k", kernel="6.1.0-other", only=1)
    os.replace(next((tmp_path / "k").iterdir()), kernels / "zz-other.json")
    proc = main(capsys, "qualify", kernels, "--reference", BASE, "--no-facts")
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert "warning: the candidate mixes kernels" in proc.stderr and "6.1.0-other" in proc.stderr
