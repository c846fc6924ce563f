"""The command line's shared checks (issue 28): output paths and typed numbers.

Every subcommand names its outputs in ``set_defaults(outputs=...)`` and cli.main checks them all
before the command runs, so each command refuses an unusable path the same way: one line on
stderr and exit 2, never a traceback after the inputs were read.
"""

import argparse
import math
import os
import stat
import tempfile

_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFDIR: "a directory", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket"}


def _non_regular(path):
    """'a FIFO' etc. for something at ``path`` that is not a regular file (symlinks not followed), else None."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None  # a new path
    return None if stat.S_ISREG(mode) else _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def bad_output(path, kind, files=()):
    """Why ``path`` cannot be used as an output ``kind`` ("directory" or "file"), or None.

    A file must be a regular file or a new path (never a device, FIFO, directory or symlink, as for
    mntscale's --out). A directory is made if missing, a temporary file created and removed in it
    (so a target that root's access() would pass but the kernel refuses, /proc or a read-only
    mount, is caught), and each of the ``files`` the command writes in it must be regular or new.
    """
    if path == "":
        return "is empty: give a path"
    if kind == "file":
        what = _non_regular(path)
        if what:
            return f"is {what}; an output file must be a regular file or a new path"
        directory = os.path.dirname(os.path.abspath(path))
    else:
        directory = path
        if os.path.lexists(path) and not os.path.isdir(path):
            return f"is {_non_regular(path) or 'a file'}, not a directory"
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".mntscale_report-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"cannot write in {directory}: {e.strerror or e}"
    for name in files:
        what = _non_regular(os.path.join(directory, name))
        if what:
            return f"holds {name}, which is {what}; it must be a regular file or absent"
    return None


def check_outputs(outputs, err):
    """Print (to ``err``) and count unusable outputs, given as (option, path, kind[, files]); True when all usable."""
    ok = True
    for option, path, kind, *files in outputs:
        why = path is not None and bad_output(path, kind, *files)
        if why:
            print(f"mntscale_report: {option} {path!r}: {why}", file=err)
            ok = False
    return ok


def number(low, high, low_open=True, integer=False):
    """An argparse type: a finite number in the range, else a usage error naming the value."""
    def parse(text):
        try:
            v = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if integer else 'a number'}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        above = v > low if low_open else v >= low
        if not (above and v < high):
            bounds = f"{'(' if low_open else '['}{low:g}, {high:g})"
            raise argparse.ArgumentTypeError(f"{text!r} is outside {bounds}")
        return v
    return parse


POSITIVE = number(0, math.inf)
