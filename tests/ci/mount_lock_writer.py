#!/usr/bin/python3
"""Bump mount_lock's write side as fast as one CPU can, in a private mount namespace.

Run under `unshare -m --propagation private`. It mounts a tmpfs on a fresh directory and
toggles it read-only and back with MS_REMOUNT|MS_BIND: each toggle takes mount_lock for
writing (lock_mount_hash in do_reconfigure_mnt), so path walks anywhere on the host that
were in RCU mode fail to legitimize their mounts at the end and redo the walk with
references. That is a kernel-side slowdown of path_walk under identical point names: what
a nightly regression looks like. Prints "ready" once mounted; stops when killed, and its
mount goes with its namespace.
"""

import ctypes
import os
import sys
import tempfile

MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    target = tempfile.mkdtemp(prefix="mount-lock-writer.").encode()
    if libc.mount(b"tmpfs", target, b"tmpfs", 0, None) != 0:
        sys.exit(f"mount tmpfs on {target.decode()}: {os.strerror(ctypes.get_errno())}")
    ro, rw = MS_REMOUNT | MS_BIND | MS_RDONLY, MS_REMOUNT | MS_BIND
    if libc.mount(None, target, None, ro, None) != 0:
        sys.exit(f"remount read-only: {os.strerror(ctypes.get_errno())}")
    print("ready", flush=True)
    mount = libc.mount
    while True:
        mount(None, target, None, rw, None)
        mount(None, target, None, ro, None)


if __name__ == "__main__":
    main()
