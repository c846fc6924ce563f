"""The architecture, checked (issue 27): the subsystems under harness/ only use
the ones below them, benchmarks/ holds only scenarios, the command line lives in
cli/, no harness file grows far past 500 lines, and scenarios compare axis values
as enums, not strings. Each test fails when its rule is broken."""
import glob
import os
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

# Who may include whom (docs/architecture.md): each subsystem only what sits
# below it. A new edge is a design change: change the table and the page together.
ALLOWED = {
    "sys": set(),
    "model": {"sys"},
    "observe": {"sys", "model"},
    "runtimes": {"sys", "model"},
    "run": {"sys", "model", "observe"},
    "suite": {"sys", "model", "observe", "runtimes", "run"},
    "capacity": {"sys", "model", "run", "suite"},
    "live": {"sys"},
    "tools": set(),
}
MAX_LINES = 520  # "about 500"
INCLUDE = re.compile(r'#include "mntscale/(\w+)/')


def _files(*patterns):
    out = []
    for p in patterns:
        out += glob.glob(os.path.join(ROOT, p))
    return sorted(out)


def _subsystems():
    harness = os.path.join(ROOT, "harness")
    return sorted(d for d in os.listdir(harness)
                  if os.path.isdir(os.path.join(harness, d)) and d not in ("include", "data"))


def edges(sub):
    """(file, used subsystem) for every include of another subsystem."""
    out = []
    for f in _files(f"harness/{sub}/*.cc", f"harness/{sub}/*.h", f"harness/include/mntscale/{sub}/*.h"):
        with open(f) as fh:
            for used in INCLUDE.findall(fh.read()):
                if used != sub:
                    out.append((os.path.relpath(f, ROOT), used))
    return out


def test_every_subsystem_is_in_the_table():
    assert set(_subsystems()) == set(ALLOWED), "a harness/ folder is missing from ALLOWED (or gone)"


def test_subsystems_only_use_the_ones_below_them():
    bad = [f"{f} includes mntscale/{used}/" for sub in _subsystems() for f, used in edges(sub)
           if used not in ALLOWED[sub]]
    assert not bad, "back edges:\n" + "\n".join(bad)


def test_benchmarks_hold_only_scenarios():
    for f in _files("benchmarks/*.cc"):
        with open(f) as fh:
            text = fh.read()
        assert text.count("MNTSCALE_SCENARIO(") == 1, f"{f} is not one scenario"
        assert "int main(" not in text, f"{f}: the command line belongs in cli/"
    assert _files("cli/main.cc"), "cli/main.cc is missing"


def test_no_harness_file_is_far_over_500_lines():
    long = []
    for f in _files("harness/*/*.cc", "harness/*/*.h", "harness/include/mntscale/*/*.h"):
        with open(f) as fh:
            n = sum(1 for _ in fh)
        if n > MAX_LINES:
            long.append(f"{os.path.relpath(f, ROOT)}: {n} lines")
    assert not long, "\n".join(long)


def test_scenarios_compare_axis_values_as_enums():
    # p.Str("axis") == "value" is a string standing in for an enum: Point::Enum
    # with the axis's EnumName table parses it once.
    # So is a variable that holds p.Str(...) compared with a literal.
    direct = re.compile(r'Str\("\w+"\)\s*[!=]=\s*"')
    bad = []
    for f in _files("benchmarks/*.cc", "harness/*/*.cc"):
        with open(f) as fh:
            text = fh.read()
        held = set(re.findall(r'(\w+)\s*=\s*p\.Str\(', text))
        for i, line in enumerate(text.splitlines(), 1):
            if direct.search(line) or any(re.search(rf'\b{v}\s*[!=]=\s*"', line) for v in held):
                bad.append(f"{os.path.relpath(f, ROOT)}:{i}: {line.strip()}")
    assert not bad, "\n".join(bad)
