#!/usr/bin/python3
"""mntscale reporting entry point; the logic lives in the mntscale_reports package.

Usage: mntscale_report.py report OUTDIR FILE_OR_DIR... | compare A B [...] | usl FILE... | capacity A.json [...]
"""

import sys

from mntscale_reports.cli import main  # reports/ is sys.path[0] when this runs as a script

if __name__ == "__main__":
    sys.exit(main())
