"""Guest layout -> qemu options; kernel argument helpers that need no network."""

import struct

import pytest

from kmatrix import kernels, topology


def test_numa_split_even():
    t = topology.make(cpus=4, memory_mb=3000, numa_nodes=2)
    args = " ".join(t.qemu_args())
    assert "-smp 4,sockets=1,cores=4,threads=1" in args
    assert "memory-backend-ram,id=kmem0,size=1500M" in args
    assert "node,nodeid=1,cpus=2-3,memdev=kmem1" in args


def test_no_numa_by_default():
    assert "-numa" not in topology.make(2, 2048).qemu_args()


def test_synthetic_file_maps_packages_numa_and_threads(tmp_path):
    f = tmp_path / "two.synthetic"
    f.write_text("# a made-up box\npack:2 numa:1 core:2 pu:2\n")
    t = topology.load(str(f), memory_mb=4096)
    assert (t.cpus, t.sockets, t.threads, len(t.nodes)) == (8, 2, 2, 2)


def test_json_explicit_nodes(tmp_path):
    f = tmp_path / "t.json"
    f.write_text('{"numa": [{"cpus": 1, "memory_mb": 512}, {"cpus": 3, "memory_mb": 1536}]}')
    t = topology.load(str(f))
    assert t.cpus == 4 and t.memory_mb == 2048 and t.nodes == [(1, 512), (3, 1536)]


def test_impossible_layouts_are_errors():
    with pytest.raises(topology.TopologyError):
        topology.make(cpus=2, numa_nodes=3)
    with pytest.raises(topology.TopologyError):
        topology.make(cpus=3, sockets=2)


def test_choose_package_takes_newest_abi_not_dbg():
    names = ["linux-image-6.1.0-9-cloud-amd64", "linux-image-6.1.0-56-cloud-amd64",
             "linux-image-6.1.0-56-cloud-amd64-dbg", "linux-image-6.1.0-47-cloud-amd64-unsigned",
             "linux-image-6.12.117+deb12-cloud-amd64"]
    assert kernels.choose_package("linux-image-6.1.0-*-cloud-amd64", names) == "linux-image-6.1.0-56-cloud-amd64"
    assert kernels.choose_package("linux-image-6.12.*-cloud-amd64", names) == \
        "linux-image-6.12.117+deb12-cloud-amd64"
    assert kernels.choose_package("linux-image-5.*", names) is None


def test_bzimage_version_from_setup_header(tmp_path):
    head = bytearray(0x400)
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", head, 0x20E, 0x100)  # string at 0x300
    s = b"6.14.0-rc1-test (me@box) #3 SMP"
    head[0x300:0x300 + len(s)] = s
    f = tmp_path / "bzImage"
    f.write_bytes(bytes(head))
    assert kernels.release_of_image(str(f)) == "6.14.0-rc1-test"
    (tmp_path / "junk").write_bytes(b"\0" * 100)
    assert kernels.bzimage_version(str(tmp_path / "junk")) is None


def test_image_path_spec(tmp_path):
    img = tmp_path / "bzImage"
    img.write_bytes(b"\0" * 10)
    mods = tmp_path / "lib" / "modules" / "6.14.0-x"
    mods.mkdir(parents=True)
    k = kernels.resolve(f"{img}:{mods}")
    assert not k.native and k.release == "6.14.0-x" and k.modules_dir == str(mods)
    with pytest.raises(kernels.KernelError):
        kernels.resolve(f"{img}:{tmp_path}/nope")
