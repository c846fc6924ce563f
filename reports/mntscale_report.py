#!/usr/bin/python3
"""mntscale reporting entry point; the logic lives in the mntscale_reports package.

Usage: mntscale_report.py report OUTDIR FILE_OR_DIR... | compare A B [...] | usl FILE... | capacity A.json [...]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mntscale_reports.cli import main  # noqa: E402 - needs the path above

if __name__ == "__main__":
    sys.exit(main())
