"""Guest image assembly: libraries from ldd, modules for the kernel, the cpio itself."""

import gzip
import lzma
import os
import shutil
import stat
import subprocess

import pytest

from kmatrix import initramfs as ir

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd5a1f2000)
\tlibhwloc.so.15 => /lib/x86_64-linux-gnu/libhwloc.so.15 (0x00007f0e9a000000)
\tlibnuma.so.1 => /lib/x86_64-linux-gnu/libnuma.so.1 (0x00007f0e99ff0000)
\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f0e99c00000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0e99a1f000)
\tlibnuma.so.1 => /lib/x86_64-linux-gnu/libnuma.so.1 (0x00007f0e99ff0000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0e9a0a5000)
"""


def test_parse_ldd_keeps_loader_drops_vdso_and_duplicates():
    libs = ir.parse_ldd(LDD)
    assert libs == ["/lib/x86_64-linux-gnu/libhwloc.so.15", "/lib/x86_64-linux-gnu/libnuma.so.1",
                    "/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libc.so.6",
                    "/lib64/ld-linux-x86-64.so.2"]


def test_parse_ldd_missing_library_is_an_error():
    with pytest.raises(ir.ImageError, match="libpfm.so.4"):
        ir.parse_ldd(LDD + "\tlibpfm.so.4 => not found\n")


def test_shared_libraries_of_a_real_binary_include_libc_and_loader():
    libs = ir.shared_libraries("/usr/bin/python3")
    names = [os.path.basename(p) for p in libs]
    assert "libc.so.6" in names
    assert any(n.startswith("ld-linux") for n in names)
    assert all(os.path.isabs(p) and os.path.exists(p) for p in libs)


def test_static_binary_needs_no_libraries():
    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static not installed (scripts/setup.sh installs it)")
    out = subprocess.run(["file", "-L", "/bin/busybox"], capture_output=True, text=True).stdout
    if "statically linked" not in out:
        pytest.skip("/bin/busybox is not the static build")
    assert ir.shared_libraries("/bin/busybox") == []


def _fake_modules(tmp_path, with_dep_file):
    mods = tmp_path / "lib" / "modules" / "6.9.0-test"
    fs = mods / "kernel" / "fs"
    (fs / "overlayfs").mkdir(parents=True)
    (fs / "exportfs").mkdir(parents=True)
    (fs / "overlayfs" / "overlay.ko.xz").write_bytes(lzma.compress(b"\x7fELF overlay body"))
    (fs / "exportfs" / "exportfs.ko").write_bytes(b"\x7fELF exportfs body")
    (fs / "unrelated.ko").write_bytes(b"\x7fELF other")
    if with_dep_file:
        (mods / "modules.dep").write_text(
            "kernel/fs/overlayfs/overlay.ko.xz: kernel/fs/exportfs/exportfs.ko\n"
            "kernel/fs/exportfs/exportfs.ko:\nkernel/fs/unrelated.ko:\n")
    return str(mods)


@pytest.mark.parametrize("with_dep_file", [True, False])
def test_module_closure_orders_dependencies_first(tmp_path, with_dep_file):
    mods = _fake_modules(tmp_path, with_dep_file)
    deps = {"overlay": ["exportfs"], "exportfs": [], "unrelated": []}
    order, missing = ir.module_closure(["overlay"], mods,
                                       depends_of=lambda p: deps[ir.module_name(p)])
    assert [ir.module_name(p) for p in order] == ["exportfs", "overlay"]
    assert missing == []


def test_module_closure_reports_builtin_or_absent_module(tmp_path):
    mods = _fake_modules(tmp_path, True)
    order, missing = ir.module_closure(["overlay", "fuse"], mods)
    assert "fuse" in missing
    assert [ir.module_name(p) for p in order] == ["exportfs", "overlay"]


def test_guest_image_holds_binary_libraries_busybox_and_decompressed_module(tmp_path):
    mods = _fake_modules(tmp_path, True)
    busybox = shutil.which("busybox") or "/bin/true"
    libs = ir.shared_libraries("/bin/true")
    img = ir.build_guest("/bin/true", mods, ["--scenario", "path_walk"], "tcg", "box-vm",
                         busybox=busybox)
    entries = ir.read_cpio(img.archive.to_cpio())
    for lib in libs:
        assert lib.lstrip("/") in entries, lib
    assert entries["mntscale/mntscale"].mode & 0o111
    assert stat.S_ISREG(entries["bin/busybox"].mode)
    assert entries["modules/overlay.ko"].data == b"\x7fELF overlay body"  # xz undone
    assert entries["modules/order"].data.decode().split() == ["exportfs.ko", "overlay.ko"]
    assert stat.S_ISCHR(entries["dev/console"].mode) and entries["dev/console"].rdev == (5, 1)
    assert b"MNTSCALE_ACCELERATOR=tcg" in entries["kmatrix/env"].data
    run = entries["kmatrix/run"].data.decode()
    assert "/mntscale/mntscale run --scenario path_walk --out /tmp/result.json" in run
    assert entries["init"].mode & 0o111 and entries["init"].data.startswith(b"#!/bin/busybox sh")
    assert img.modules == ["exportfs", "overlay"] and img.missing_modules == []


def test_cpio_lists_parents_before_children_and_ends_with_trailer():
    a = ir.Archive()
    a.add_file("a/b/c.txt", b"hello")
    a.add_symlink("a/link", "b/c.txt")
    raw = a.to_cpio()
    assert raw.rstrip(b"\0").endswith(b"TRAILER!!!")
    names = list(ir.read_cpio(raw))
    assert names.index("a") < names.index("a/b") < names.index("a/b/c.txt")
    e = ir.read_cpio(raw)
    assert e["a/link"].data == b"b/c.txt" and stat.S_ISLNK(e["a/link"].mode)
    assert len(raw) % 4 == 0


def test_cpio_is_readable_by_cpio_tool(tmp_path):
    if not shutil.which("cpio"):
        pytest.skip("cpio not installed (scripts/setup.sh installs it)")
    a = ir.Archive()
    a.add_file("x/y", b"data", 0o640)
    path = tmp_path / "i.gz"
    a.write_gzip(str(path))
    r = subprocess.run(["cpio", "-t"], input=gzip.decompress(path.read_bytes()), capture_output=True)
    assert r.returncode == 0
    assert r.stdout.decode().split() == ["x", "x/y"]


def test_guest_image_holds_attribution_bucket_file_beside_binary(tmp_path):
    # --attribute and --waits read it; without it every guest point is unsupported.
    mods = _fake_modules(tmp_path, True)
    img = ir.build_guest("/bin/true", mods, ["--scenario", "path_walk"], "tcg", "box-vm",
                         busybox=shutil.which("busybox") or "/bin/true")
    entries = ir.read_cpio(img.archive.to_cpio())
    src = os.path.join(ir.REPO, "harness", "data", "attribution_buckets.json")
    assert entries["mntscale/attribution_buckets.json"].data == open(src, "rb").read()
