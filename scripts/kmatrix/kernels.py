"""Kernel arguments: a Debian package name, an image path with its modules, or `native`.

  native                                   this machine's kernel, no VM
  linux-image-6.1.0-56-cloud-amd64         a Debian package (apt-get download)
  linux-image-6.1.0-*-cloud-amd64          a glob: the newest matching package
  linux-image-cloud-amd64                  a meta-package: the image it depends on
  /path/bzImage[:/path/lib/modules/REL]    a patched build (modules optional)
"""

import fnmatch
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass

DEFAULT_CACHE = "/var/cache/mntscale/kernels"


class KernelError(Exception):
    """This kernel argument cannot be turned into something bootable."""


@dataclass
class Kernel:
    spec: str  # what the user wrote
    label: str  # short name for files and the summary
    native: bool = False
    image: str = ""  # bzImage / vmlinuz
    modules_dir: str = ""  # /lib/modules/RELEASE-like directory, or ""
    release: str = ""  # expected `uname -r`, when known before boot
    source: str = ""  # how it was obtained (package_version, path)


def safe_label(text):
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "kernel"


def bzimage_version(path):
    """The version string an x86 bzImage carries in its setup header ("6.1.0-56-cloud-amd64 (...)").

    Boot protocol: "HdrS" at 0x202; a 16-bit pointer at 0x20E, relative to 0x200,
    locates the NUL-terminated kernel_version string. None when the file is not a bzImage.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(0x10000)
    except OSError:
        return None
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        return None
    (ptr,) = struct.unpack_from("<H", head, 0x20E)
    start = 0x200 + ptr
    end = head.find(b"\0", start)
    if ptr == 0 or end < 0:
        return None
    return head[start:end].decode(errors="replace")


def release_of_image(path):
    v = bzimage_version(path)
    return v.split()[0] if v else ""


def _apt(*args):
    return subprocess.run(["apt-cache", *args], capture_output=True, text=True)


def _version_key(name):
    """Sort key putting linux-image-6.1.0-56 after -9 and 6.12.117 after 6.12.99."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def choose_package(pattern, names):
    """The newest of `names` matching a glob pattern (pure; used for `*` in package specs)."""
    hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)
            and not n.endswith(("-dbg", "-unsigned"))]
    if not hits:
        return None
    return max(hits, key=_version_key)


def resolve_package(spec):
    """A concrete linux-image package name for a name, glob or meta-package."""
    name = spec
    if any(c in spec for c in "*?["):
        prefix = spec.split("*")[0].split("?")[0].split("[")[0]
        r = _apt("pkgnames", prefix)
        name = choose_package(spec, r.stdout.split())
        if not name:
            raise KernelError(f"no package matches '{spec}' (apt-cache pkgnames {prefix})")
    for _ in range(3):  # meta -> versioned meta -> image
        r = _apt("show", "--no-all-versions", name)
        if r.returncode != 0 or not r.stdout.strip():
            raise KernelError(f"package '{name}' unknown to apt-cache (apt-get update?): "
                              f"{r.stderr.strip()}")
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", r.stdout, re.M))
        dep = fields.get("Depends", "")
        m = re.match(r"\s*(linux-image-[^\s,(|]+)", dep)
        # A meta-package's only job is depending on the image; a real image ships files.
        if m and int(fields.get("Installed-Size", "0") or 0) < 100:
            name = m.group(1)
            continue
        return name, fields.get("Version", "")
    raise KernelError(f"'{spec}': meta-package chain too long")


def fetch_package(name, version, cache):
    """The .deb in the cache, downloaded with apt-get when absent."""
    os.makedirs(cache, exist_ok=True)
    ver = version.replace(":", "%3a")
    want = f"{name}_{ver}_amd64.deb"
    path = os.path.join(cache, want)
    if os.path.exists(path):
        return path
    tmp = os.path.join(cache, ".download")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        os.chmod(tmp, 0o777)  # apt-get drops to _apt for the fetch
    except OSError:
        pass
    r = subprocess.run(["apt-get", "download", "-q", f"{name}={version}" if version else name],
                       cwd=tmp, capture_output=True, text=True)
    debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
    if r.returncode != 0 or not debs:
        shutil.rmtree(tmp, ignore_errors=True)
        raise KernelError(f"apt-get download {name} failed: {(r.stderr or r.stdout).strip()[-400:]}")
    final = os.path.join(cache, debs[0])
    os.replace(os.path.join(tmp, debs[0]), final)
    shutil.rmtree(tmp, ignore_errors=True)
    return final


def extract_package(deb, cache):
    """dpkg-deb -x into cache/extracted/NAME (kept: images and modules are reused)."""
    dest = os.path.join(cache, "extracted", os.path.basename(deb)[:-4])
    if not os.path.exists(os.path.join(dest, ".complete")):
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        r = subprocess.run(["dpkg-deb", "-x", deb, dest], capture_output=True, text=True)
        if r.returncode != 0:
            raise KernelError(f"dpkg-deb -x {deb}: {r.stderr.strip()}")
        open(os.path.join(dest, ".complete"), "w").close()
    return dest


def locate_in_tree(root):
    """(vmlinuz, modules dir, release) inside an extracted linux-image package."""
    boot = os.path.join(root, "boot")
    images = sorted(f for f in os.listdir(boot) if f.startswith("vmlinuz-")) if os.path.isdir(boot) else []
    if not images:
        raise KernelError(f"no boot/vmlinuz-* in {root}")
    release = images[0][len("vmlinuz-"):]
    mods = ""
    for base in ("lib/modules", "usr/lib/modules"):
        cand = os.path.join(root, base, release)
        if os.path.isdir(cand):
            mods = cand
            break
    return os.path.join(boot, images[0]), mods, release


def resolve(spec, cache=DEFAULT_CACHE, log=print):
    """A Kernel for one command-line argument (downloads when needed)."""
    if spec == "native":
        return Kernel(spec, "native-" + os.uname().release, native=True, release=os.uname().release,
                      source="this machine")
    if spec.startswith("/") or spec.startswith("./") or os.path.exists(spec.split(":")[0]):
        image, _, mods = spec.partition(":")
        if not os.path.isfile(image):
            raise KernelError(f"kernel image {image} does not exist")
        if mods and not os.path.isdir(mods):
            raise KernelError(f"modules directory {mods} does not exist")
        release = release_of_image(image) or (os.path.basename(mods.rstrip("/")) if mods else "")
        return Kernel(spec, safe_label(release or os.path.basename(image)), image=os.path.abspath(image),
                      modules_dir=os.path.abspath(mods) if mods else "", release=release, source=image)
    name, version = resolve_package(spec)
    log(f"kernel-matrix: {spec} -> {name} {version}")
    deb = fetch_package(name, version, cache)
    tree = extract_package(deb, cache)
    image, mods, release = locate_in_tree(tree)
    return Kernel(spec, safe_label(release), image=image, modules_dir=mods, release=release,
                  source=f"{name}_{version}")
