"""On a Debian kernel the kernel matrix has downloaded: overlay is found via modinfo.

Needs the kernel cache that kmatrix.boot_debian_tcg fills, so ctest labels it slow,
with that test (tests/CMakeLists.txt); it is not part of the default run.
"""

import os
import shutil

import pytest

from kmatrix import initramfs as ir

DEB_CACHE = "/var/cache/mntscale/kernels/extracted"


def test_overlay_module_of_a_cached_debian_kernel(tmp_path):
    """On a real Debian package tree (no modules.dep): overlay is found via modinfo."""
    trees = sorted(os.path.join(DEB_CACHE, d) for d in os.listdir(DEB_CACHE)) if os.path.isdir(DEB_CACHE) else []
    trees = [t for t in trees if os.path.isdir(os.path.join(t, "lib", "modules"))]
    if not trees or not shutil.which("modinfo"):
        pytest.skip("no Debian kernel extracted in the cache yet (run scripts/kernel-matrix once) or no modinfo")
    for tree in trees:
        rel = os.listdir(os.path.join(tree, "lib", "modules"))[0]
        mods = os.path.join(tree, "lib", "modules", rel)
        order, missing = ir.module_closure(["overlay"], mods)
        assert missing == [] and ir.module_name(order[-1]) == "overlay", tree
        assert ir.decompress_module(order[-1])[:4] == b"\x7fELF"
