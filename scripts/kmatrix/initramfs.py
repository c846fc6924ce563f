"""The guest image: a gzip'd cpio (newc) holding mntscale, its libraries, busybox and modules.

The archive is written here rather than with cpio(1) so device nodes (/dev/console,
which the kernel opens for init's stdio before any devtmpfs exists) need no mknod on
the host, and so the exact contents are testable.
"""

import gzip
import io
import lzma
import os
import re
import shlex
import stat
import subprocess
from dataclasses import dataclass, field

MODULE_SUFFIXES = (".ko.xz", ".ko.zst", ".ko.gz", ".ko")

# Markers on the serial console. The host parses only lines between BEGIN and END.
READY = "@@KMATRIX-READY@@"
FAIL = "@@KMATRIX-FAIL@@"
RC = "@@KMATRIX-RC@@"
BEGIN = "@@KMATRIX-BEGIN@@"
END = "@@KMATRIX-END@@"
PROBE = "@@KMATRIX-PROBE@@"
CGROUPS = "@@KMATRIX-CGROUPS@@"  # the cgroup mounts a --cgroup guest made
FILE = "@@KMATRIX-FILE@@"  # a named file from /tmp/out, base64 up to END

# --cgroup: the hierarchies a guest can be given. v2 is the unified hierarchy
# alone (cgroup_no_v1=all, cgroup2 at /sys/fs/cgroup): what crun needs, and
# what runc takes its cgroup v2 path on. Without --cgroup the guest mounts none.
CGROUP_MODES = ("v2",)
CGROUP_CMDLINE = {"v2": "cgroup_no_v1=all"}
# Where a guest's extra outputs go; stage2 streams each file there to the host.
GUEST_OUT = "/tmp/out"

# Data files the harness reads at run time, copied beside the binary: the
# harness looks next to its executable (/mntscale/) when the source tree is absent.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_FILES = {"mntscale/attribution_buckets.json":
              os.path.join(REPO, "harness", "data", "attribution_buckets.json")}

_LDD_ARROW = re.compile(r"^\s*(\S+)\s+=>\s+(\S+)\s+\(0x[0-9a-fA-F]+\)\s*$")
_LDD_BARE = re.compile(r"^\s*(/\S+)\s+\(0x[0-9a-fA-F]+\)\s*$")
_LDD_MISSING = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")


class ImageError(Exception):
    """The image cannot be built (a library or module is missing)."""


def parse_ldd(text):
    """Paths of the shared objects ldd listed, the dynamic loader included, in order.

    The vDSO (no path) is not a file and is left out; a "not found" library is an
    error, because the guest binary would not start.
    """
    paths, missing = [], []
    for line in text.splitlines():
        if m := _LDD_MISSING.match(line):
            missing.append(m.group(1))
        elif m := _LDD_ARROW.match(line):
            paths.append(m.group(2))
        elif m := _LDD_BARE.match(line):
            paths.append(m.group(1))
    if missing:
        raise ImageError("libraries not found by ldd: " + ", ".join(missing))
    seen, out = set(), []
    for p in paths:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def shared_libraries(binary):
    """ldd's list for a binary; a static binary needs none."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if r.returncode != 0:
        if "not a dynamic executable" in (r.stdout + r.stderr):
            return []
        raise ImageError(f"ldd {binary} failed: {r.stderr.strip() or r.stdout.strip()}")
    return parse_ldd(r.stdout)


def module_name(path):
    """Kernel module name of a file: basename without .ko[.xz|.zst|.gz], '-' as '_'."""
    base = os.path.basename(path)
    for suf in MODULE_SUFFIXES:
        if base.endswith(suf):
            return base[: -len(suf)].replace("-", "_")
    return None


def index_modules(modules_dir):
    """name -> path of every module file under a /lib/modules/RELEASE directory."""
    index = {}
    for root, _dirs, files in os.walk(modules_dir):
        for f in files:
            name = module_name(f)
            if name and name not in index:
                index[name] = os.path.join(root, f)
    return index


def parse_modules_dep(text, modules_dir):
    """modules.dep -> {name: (path, [dependency names])}."""
    deps = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        mod, rest = line.split(":", 1)
        path = mod if os.path.isabs(mod) else os.path.join(modules_dir, mod)
        deps[module_name(mod)] = (path, [module_name(d) for d in rest.split()])
    return deps


def _modinfo_depends(path):
    r = subprocess.run(["modinfo", "-F", "depends", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise ImageError(f"modinfo {path}: {r.stderr.strip()}")
    return [d.replace("-", "_") for d in r.stdout.strip().split(",") if d]


def module_closure(wanted, modules_dir, depends_of=None):
    """Module files to load for `wanted`, dependencies first (insmod order).

    Uses modules.dep when the directory has one (a `make modules_install` tree), else
    reads each module's own `depends` (a Debian package ships no modules.dep: depmod
    makes it at install time). `depends_of(path)` is injectable for tests.
    Returns (ordered paths, names not found). A module built into the kernel has no
    file, so a name missing here is reported, not fatal: the guest checks
    /proc/filesystems for what it needs.
    """
    dep_file = os.path.join(modules_dir, "modules.dep")
    table = None
    if os.path.exists(dep_file):
        with open(dep_file) as f:
            table = parse_modules_dep(f.read(), modules_dir)
    index = index_modules(modules_dir) if table is None else {k: v[0] for k, v in table.items()}
    depends_of = depends_of or _modinfo_depends

    order, done, missing = [], set(), []

    def visit(name, stack):
        name = name.replace("-", "_")
        if name in done:
            return
        if name in stack:
            raise ImageError("module dependency cycle: " + " -> ".join(stack + [name]))
        path = index.get(name)
        if path is None:
            missing.append(name)
            done.add(name)
            return
        deps = table[name][1] if table is not None else depends_of(path)
        for d in deps:
            visit(d, stack + [name])
        done.add(name)
        order.append(path)

    for w in wanted:
        visit(w, [])
    return order, missing


def decompress_module(path):
    """Plain .ko bytes: busybox insmod hands the file to init_module and cannot decompress."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        r = subprocess.run(["zstd", "-d", "-c", "-q", path], capture_output=True)
        if r.returncode != 0:
            raise ImageError(f"zstd -d {path}: {r.stderr.decode(errors='replace').strip()}")
        return r.stdout
    return data


# --- cpio newc ----------------------------------------------------------------------------

@dataclass
class Entry:
    name: str  # path inside the archive, no leading '/'
    mode: int  # full st_mode (type bits included)
    data: bytes = b""
    rdev: tuple = (0, 0)


@dataclass
class Archive:
    """In-memory file tree written as one cpio newc stream; parents are added implicitly."""

    entries: dict = field(default_factory=dict)

    def _parents(self, name):
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.entries:
                self.entries[d] = Entry(d, stat.S_IFDIR | 0o755)

    def add_dir(self, name, mode=0o755):
        name = name.strip("/")
        self._parents(name)
        self.entries[name] = Entry(name, stat.S_IFDIR | mode)

    def add_file(self, name, data, mode=0o644):
        name = name.strip("/")
        self._parents(name)
        self.entries[name] = Entry(name, stat.S_IFREG | mode, data)

    def add_host_file(self, name, host_path, mode=None):
        with open(host_path, "rb") as f:
            data = f.read()
        if mode is None:
            mode = stat.S_IMODE(os.stat(host_path).st_mode)
        self.add_file(name, data, mode)

    def add_symlink(self, name, target):
        name = name.strip("/")
        self._parents(name)
        self.entries[name] = Entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_chardev(self, name, major, minor, mode=0o600):
        name = name.strip("/")
        self._parents(name)
        self.entries[name] = Entry(name, stat.S_IFCHR | mode, b"", (major, minor))

    def names(self):
        return sorted(self.entries)

    def to_cpio(self):
        out = io.BytesIO()

        def pad(n):
            out.write(b"\0" * ((4 - n % 4) % 4))

        def write(ino, e):
            name = e.name.encode() + b"\0"
            fields = [ino, e.mode, 0, 0, 2 if stat.S_ISDIR(e.mode) else 1, 0, len(e.data),
                      0, 0, e.rdev[0], e.rdev[1], len(name), 0]
            hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
            out.write(hdr)
            out.write(name)
            pad(len(hdr) + len(name))
            out.write(e.data)
            pad(len(e.data))

        # Directories sort before their contents, so the kernel creates them first.
        for ino, name in enumerate(self.names(), start=1):
            write(ino, self.entries[name])
        write(0, Entry("TRAILER!!!", 0))
        return out.getvalue()

    def write_gzip(self, path):
        with open(path, "wb") as f:
            f.write(gzip.compress(self.to_cpio(), compresslevel=1))


def read_cpio(data):
    """{name: Entry} from a newc stream (used by tests and `--inspect`)."""
    entries, off = {}, 0
    while off < len(data):
        if data[off:off + 6] != b"070701":
            raise ValueError(f"bad cpio magic at {off}")
        f = [int(data[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        off += 110
        name = data[off:off + namesize - 1].decode()
        off += namesize
        off += (4 - off % 4) % 4
        body = data[off:off + filesize]
        off += filesize
        off += (4 - off % 4) % 4
        if name == "TRAILER!!!":
            break
        entries[name] = Entry(name, f[1], body, (f[9], f[10]))
    return entries


# --- the guest's init -----------------------------------------------------------------------

# Stage 1 runs on rootfs, which pivot_root(2) refuses (it has no parent mount); the
# harness pivot_roots into containers, so everything moves to a tmpfs first.
STAGE1 = """#!/bin/busybox sh
/bin/busybox mkdir -p /newroot
/bin/busybox mount -t tmpfs -o mode=0755 root /newroot
for d in /*; do
  case $d in /proc|/sys|/dev|/newroot|/init) ;; *) /bin/busybox cp -a $d /newroot/ ;; esac
done
/bin/busybox mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp
exec /bin/busybox switch_root /newroot /kmatrix/stage2
"""

STAGE2 = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/usr/sbin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmp /tmp
[ -d /sys/kernel/debug ] && mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
say() { echo "$*" > /dev/console; }
done_() { sync; poweroff -f; sleep 5; echo o > /proc/sysrq-trigger; }
for m in $(cat /modules/order 2>/dev/null); do
  insmod /modules/$m 2>/dev/console || say "kmatrix: insmod $m failed"
done
for fs in $(cat /kmatrix/need-fs); do
  grep -qw "$fs" /proc/filesystems || { say "%(FAIL)s filesystem $fs not available on $(uname -r)"; done_; }
done
[ -f /kmatrix/cgroup ] && . /kmatrix/cgroup
say "%(READY)s $(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo)"
. /kmatrix/env
cd /tmp
/kmatrix/run > /dev/console 2>&1
rc=$?
# Quiet the kernel while the payload streams, so printk lines cannot split it.
echo 1 > /proc/sys/kernel/printk
say "%(RC)s $rc"
if [ -s /tmp/result.json ]; then
  say "%(BEGIN)s"
  gzip -c /tmp/result.json | base64 > /dev/console
  say "%(END)s"
fi
for f in %(OUT)s/*; do
  [ -f "$f" ] || continue
  say "%(FILE)s ${f##*/}"
  gzip -c "$f" | base64 > /dev/console
  say "%(END)s"
done
done_
""" % {"FAIL": FAIL, "READY": READY, "RC": RC, "BEGIN": BEGIN, "END": END, "FILE": FILE,
       "OUT": GUEST_OUT}

# Sourced by stage2 in a --cgroup v2 guest, after /sys is mounted. Only the unified
# hierarchy: a v1 mount found here is a failure, not a note. Every controller the
# kernel offers is enabled in the root's subtree_control, as systemd does on a v2
# host: runc and crun put each container in a child cgroup and write its limits
# there, which needs the controllers delegated to the children.
CGROUP_V2 = """mkdir -p /sys/fs/cgroup
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || { say "%(FAIL)s mount cgroup2 /sys/fs/cgroup failed"; done_; }
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/console || say "kmatrix: cannot enable cgroup controller $c"
done
mounts=$(awk '$3 == "cgroup" || $3 == "cgroup2" { printf "%%s%%s:%%s", sep, $3, $2; sep = "," }' /proc/mounts)
[ "$mounts" = "cgroup2:/sys/fs/cgroup" ] || { say "%(FAIL)s cgroup v2 only was asked for, but the cgroup mounts are: $mounts"; done_; }
grep -qw cgroup_no_v1=all /proc/cmdline || { say "%(FAIL)s cgroup_no_v1=all is not on the kernel command line"; done_; }
say "%(CGROUPS)s mounts=$mounts no_v1=all subtree_control=$(tr ' ' ',' < /sys/fs/cgroup/cgroup.subtree_control)"
""" % {"FAIL": FAIL, "CGROUPS": CGROUPS}

PROBE_INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
# A small exec-heavy workload: nested virtualization is slowest at exactly this.
i=0
while [ $i -lt 200 ]; do /bin/busybox true; i=$((i+1)); done
echo "%(PROBE)s $(/bin/busybox cat /proc/uptime)" > /dev/console
/bin/busybox poweroff -f
""" % {"PROBE": PROBE}


def guest_env(accelerator, machine):
    return (f"export MNTSCALE_ACCELERATOR={shlex.quote(accelerator)}\n"
            f"export MNTSCALE_MACHINE={shlex.quote(machine)}\n")


def run_script(mntscale_args, steps=()):
    """/kmatrix/run: `steps` (argv lists, each run in turn, its output and exit code
    kept in GUEST_OUT/NAME.log and NAME.exit), then the mntscale run, its result to
    /tmp/result.json.

    A step is (name, argv); the files it writes to GUEST_OUT reach the host
    beside the result, so a failed or skipped step is read there, not guessed."""
    lines = ["#!/bin/busybox sh"]
    if steps:
        lines.append(f"mkdir -p {GUEST_OUT}")
    for name, argv in steps:
        log = f"{GUEST_OUT}/{name}.log"
        lines.append(f"echo 'kmatrix: step {name}' > /dev/console")
        lines.append(" ".join(shlex.quote(a) for a in argv) + f" > {log} 2>&1")
        lines.append(f"echo $? > {GUEST_OUT}/{name}.exit")
        lines.append(f"cat {log} > /dev/console")
    cmd = " ".join(shlex.quote(a) for a in ["/mntscale/mntscale", "run", *mntscale_args,
                                            "--out", "/tmp/result.json"])
    lines.append("exec " + cmd)
    return "\n".join(lines) + "\n"


def add_program(archive, host_path, guest_path=None, libraries=None):
    """A host binary at the same path in the guest (or guest_path), with its shared
    libraries at theirs (the loader and search path then work unchanged).
    Returns the libraries. `libraries` overrides ldd (tests)."""
    archive.add_host_file((guest_path or host_path).lstrip("/"), os.path.realpath(host_path), 0o755)
    libs = shared_libraries(host_path) if libraries is None else libraries
    for lib in libs:
        # realpath: copy the content, not the symlink.
        archive.add_host_file(lib.lstrip("/"), os.path.realpath(lib), 0o755)
    return libs


def base_archive(busybox="/bin/busybox"):
    a = Archive()
    for d in ("dev", "proc", "sys", "tmp", "bin", "etc"):
        a.add_dir(d)
    a.add_chardev("dev/console", 5, 1)
    a.add_chardev("dev/null", 1, 3, 0o666)
    a.add_host_file("bin/busybox", busybox, 0o755)
    a.add_symlink("bin/sh", "busybox")
    a.add_file("etc/passwd", b"root:x:0:0:root:/:/bin/sh\n")
    a.add_file("etc/group", b"root:x:0:\n")
    return a


@dataclass
class GuestImage:
    archive: Archive
    libraries: list
    modules: list  # module names, in load order
    missing_modules: list


def build_guest(binary, modules_dir, mntscale_args, accelerator, machine,
                want_modules=("overlay",), need_fs=("overlay", "tmpfs"), busybox="/bin/busybox",
                libraries=None, cgroup=None, programs=(), ship=None, steps=()):
    """The run image for one kernel. `libraries` overrides ldd (tests).

    cgroup: None (no cgroup mounted) or one of CGROUP_MODES. programs: host
    binaries copied at their own paths with their libraries (runc, crun, ...).
    ship: {guest path: host path} of programs with their libraries at another
    path (the static helper, a gtest binary). steps: run before mntscale (run_script).
    """
    if cgroup is not None and cgroup not in CGROUP_MODES:
        raise ImageError(f"cgroup mode {cgroup!r} is not one of: {', '.join(CGROUP_MODES)}")
    a = base_archive(busybox)
    a.add_dir("run")
    a.add_file("init", STAGE1.encode(), 0o755)
    a.add_file("kmatrix/stage2", STAGE2.encode(), 0o755)
    a.add_file("kmatrix/run", run_script(mntscale_args, steps).encode(), 0o755)
    a.add_file("kmatrix/env", guest_env(accelerator, machine).encode())
    a.add_file("kmatrix/need-fs", ("\n".join(need_fs) + "\n").encode())
    if cgroup == "v2":
        a.add_file("kmatrix/cgroup", CGROUP_V2.encode())
    a.add_host_file("mntscale/mntscale", binary, 0o755)
    for name, host_path in DATA_FILES.items():
        a.add_host_file(name, host_path)
    # Same path as on the host: the binary's PT_INTERP and the loader's search
    # path then work unchanged.
    libs = list(shared_libraries(binary) if libraries is None else libraries)
    for lib in libs:
        a.add_host_file(lib.lstrip("/"), os.path.realpath(lib), 0o755)
    extra = [(p, None) for p in programs] + sorted((h, g) for g, h in (ship or {}).items())
    for host_path, guest_path in extra:
        for lib in add_program(a, host_path, guest_path):
            if lib not in libs:
                libs.append(lib)
    paths, missing = module_closure(list(want_modules), modules_dir) if modules_dir else ([], list(want_modules))
    order = []
    for p in paths:
        fname = module_name(p) + ".ko"
        a.add_file("modules/" + fname, decompress_module(p))
        order.append(fname)
    a.add_file("modules/order", ("\n".join(order) + "\n").encode())
    return GuestImage(a, libs, [module_name(p) for p in paths], missing)


def build_probe(busybox="/bin/busybox"):
    a = base_archive(busybox)
    a.add_file("init", PROBE_INIT.encode(), 0o755)
    return a
