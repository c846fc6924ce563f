#!/usr/bin/python3
"""Prints the tests ctest skipped, each with its reason, from ctest's JUnit file.

Reasons come from the test's own output: a gtest `GTEST_SKIP() << why` (the line
after "Skipped"), a script's "SKIP: why" (exit 77), or pytest's -rs summary
("SKIPPED [n] file:line: why"). Usage: skip_report.py build/Testing/junit.xml
"""

import re
import sys
import xml.etree.ElementTree as ET


def reasons(output):
    lines = output.splitlines()
    found = []
    for i, line in enumerate(lines):
        m = re.match(r"^SKIPPED \[\d+\] (.*)$", line.strip())
        if m:
            found.append(m.group(1))
        elif re.match(r"^SKIP: ", line.strip()):
            found.append(line.strip()[6:])
        elif re.search(r": Skipped$", line.strip()) and i + 1 < len(lines):
            found.append(lines[i + 1].strip())
    return list(dict.fromkeys(found)) or ["(no reason printed)"]


def main():
    root = ET.parse(sys.argv[1]).getroot()
    skipped = []
    for case in root.iter("testcase"):
        if case.get("status") == "disabled" or case.find("skipped") is not None:
            out = case.findtext("system-out") or ""
            skipped.append((case.get("name"), reasons(out)))
    print(f"\nSkipped tests: {len(skipped)}")
    for name, why in skipped:
        for w in why:
            print(f"  {name}: {w}")


if __name__ == "__main__":
    main()
