"""Booting a guest under qemu with a hard timeout, and reading what it printed.

Every child (qemu, or mntscale for `native`) runs in its own process group with
PR_SET_PDEATHSIG, is tracked in _LIVE, and is killed on timeout, at exit and on
SIGINT/SIGTERM/SIGHUP: no qemu outlives the script.
"""

import atexit
import base64
import ctypes
import gzip
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

from . import initramfs as ir

QEMU = "qemu-system-x86_64"
_LIVE = {}  # pid -> Popen
_PR_SET_PDEATHSIG = 1


def _child_setup():
    os.setsid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def spawn(argv, **kw):
    p = subprocess.Popen(argv, preexec_fn=_child_setup, **kw)
    _LIVE[p.pid] = p
    return p


def kill(p):
    """SIGKILL the child's whole process group and reap it."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    _LIVE.pop(p.pid, None)


def kill_all():
    for p in list(_LIVE.values()):
        kill(p)


def _on_signal(signum, _frame):
    kill_all()
    # Restore the default and re-raise, so the exit status says which signal.
    signal.signal(signum, signal.SIG_DFL)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    sys.exit(128 + signum)


def install_cleanup():
    atexit.register(kill_all)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)


def live_children():
    return [p.pid for p in _LIVE.values() if p.poll() is None]


@dataclass
class BootResult:
    console: str
    seconds: float
    exit_code: Optional[int]  # None when killed at the timeout
    timed_out: bool
    marker_seconds: Optional[float] = None  # when stop_marker first appeared


def qemu_argv(image, initrd, accel, topo, cmdline_extra="", cpu=None):
    cpu = cpu or ("host" if accel == "kvm" else "max")
    accel_opt = "kvm" if accel == "kvm" else "tcg,thread=multi"
    # no_timer_check: on a loaded host TCG is too slow for the IO-APIC timer check,
    # which then panics ("IO-APIC + timer doesn't work"); seen here at load 12.
    cmdline = ("console=ttyS0 panic=-1 oops=panic loglevel=4 no_timer_check rdinit=/init "
               + cmdline_extra).strip()
    return [QEMU, "-nographic", "-nodefaults", "-no-reboot", "-serial", "stdio", "-monitor", "none",
            "-accel", accel_opt, "-cpu", cpu, *topo.qemu_args(),
            "-kernel", image, "-initrd", initrd, "-append", cmdline]


def boot(image, initrd, accel, topo, timeout, console_path=None, stop_marker=None, cmdline_extra="",
         cpu=None):
    """Run one guest to power-off, timeout, or (with stop_marker) the marker's first line."""
    argv = qemu_argv(image, initrd, accel, topo, cmdline_extra, cpu)
    start = time.monotonic()
    p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks, marker_at, timed_out = [], None, False
    tail = b""
    sink = open(console_path, "wb") if console_path else None
    try:
        fd = p.stdout.fileno()
        while True:
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                timed_out = True
                break
            r, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not r:
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
            if sink:
                sink.write(data)
                sink.flush()
            if stop_marker and marker_at is None:
                tail = (tail + data)[-4096:]
                if stop_marker.encode() in tail:
                    marker_at = time.monotonic() - start
                    break
    finally:
        if sink:
            sink.close()
        if p.poll() is None and (timed_out or marker_at is not None):
            kill(p)
        else:
            try:
                p.wait(timeout=max(1.0, timeout - (time.monotonic() - start)))
            except subprocess.TimeoutExpired:
                timed_out = True
            kill(p)
    return BootResult(b"".join(chunks).decode(errors="replace"), time.monotonic() - start,
                      None if timed_out else p.returncode, timed_out, marker_at)


# --- reading the console ----------------------------------------------------------------------

@dataclass
class GuestOutcome:
    ok: bool
    reason: str = ""
    release: str = ""
    rc: Optional[int] = None
    payload: Optional[bytes] = None  # the result JSON
    notes: list = field(default_factory=list)
    files: dict = field(default_factory=dict)  # name -> bytes, from the guest's /tmp/out
    cgroups: dict = field(default_factory=dict)  # a --cgroup guest's CGROUPS line, as key -> [values]


_B64 = re.compile(r"^[A-Za-z0-9+/=]+$")
_PANIC = re.compile(r"Kernel panic - not syncing:?(.*)")


def parse_console(text, timed_out=False, timeout=None):
    """What happened in the guest, from its serial console. Pure: tests feed it text."""
    lines = [l.rstrip("\r") for l in text.splitlines()]
    out = GuestOutcome(ok=False)
    in_payload, b64, file_name = False, [], None
    for l in lines:
        s = l.strip()
        if ir.CGROUPS in s:
            for kv in s.split(ir.CGROUPS, 1)[1].split():
                k, _, v = kv.partition("=")
                out.cgroups[k] = [x for x in v.split(",") if x]
        elif ir.FILE in s:
            file_name, b64 = os.path.basename(s.split(ir.FILE, 1)[1].strip()), []
        elif file_name is not None and ir.END in s:
            try:
                out.files[file_name] = gzip.decompress(base64.b64decode("".join(b64)))
            except Exception as e:  # noqa: BLE001 - any corruption is one failure
                out.notes.append(f"guest file {file_name} corrupt: {e}")
            file_name = None
        elif file_name is not None:
            if _B64.match(s):
                b64.append(s)
        elif ir.READY in s:
            out.release = s.split(ir.READY, 1)[1].split()[0] if s.split(ir.READY, 1)[1].split() else ""
        elif ir.FAIL in s:
            out.reason = "guest: " + s.split(ir.FAIL, 1)[1].strip()
        elif ir.RC in s:
            try:
                out.rc = int(s.split(ir.RC, 1)[1].split()[0])
            except (ValueError, IndexError):
                pass
        elif s == ir.BEGIN or s.endswith(ir.BEGIN):
            in_payload, b64 = True, []
        elif ir.END in s:
            in_payload = False
            try:
                out.payload = gzip.decompress(base64.b64decode("".join(b64)))
            except Exception as e:  # noqa: BLE001 - any corruption is one failure
                out.notes.append(f"result payload corrupt: {e}")
        elif in_payload and _B64.match(s):
            b64.append(s)
    if file_name is not None:
        out.notes.append(f"guest file {file_name} cut off" + (" (timeout)" if timed_out else ""))
    panic = next((m.group(0).strip() for l in lines if (m := _PANIC.search(l))), None)
    if out.reason:
        return out
    if panic:
        out.reason = panic
    elif in_payload:
        out.reason = "result payload cut off" + (" (timeout)" if timed_out else "")
    elif out.payload is not None:
        out.ok = True
        if out.rc not in (0, None):
            out.notes.append(f"mntscale exited {out.rc}; its partial result is kept")
    elif timed_out:
        where = "in mntscale" if out.release else "before userspace (no READY marker)"
        out.reason = f"timed out after {timeout:.0f}s {where}" if timeout else f"timed out {where}"
    elif not out.release:
        out.reason = "guest never reached userspace (no READY marker)"
    elif out.rc is not None:
        out.reason = f"mntscale exited {out.rc} without a result file"
    else:
        out.reason = "guest stopped before mntscale finished"
    if out.notes and not out.ok:
        out.reason += "; " + "; ".join(out.notes)
    return out


def console_tail(text, n=25):
    lines = [l for l in text.replace("\r", "").splitlines() if l.strip() and not (len(l.strip()) >= 40 and _B64.match(l.strip()))]
    return "\n".join(lines[-n:])
