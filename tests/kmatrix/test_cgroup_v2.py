"""--cgroup v2 and --runtime-fidelity (issue 24): the guest image's contents, the
guest's outputs as the host reads them, and the refusals, without a boot
(tests/kmatrix/boot_cgroup_v2.sh boots one)."""

import json
import os
import shutil
import stat

import pytest

from kmatrix import cli, initramfs as ir, runtimes as rt, vm


def _binary_dir(tmp_path, helper=True, gtest=True):
    """A stand-in build directory: mntscale, its static helper and the runtime gtest."""
    for rel, ok in (("mntscale", True), ("mntscale-mountinfo", helper),
                    ("tests/privileged_runtime_gtest", gtest)):
        if ok:
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy("/bin/true", tmp_path / rel)
    return str(tmp_path / "mntscale")


def _parse_exit(capsys, argv):
    with pytest.raises(SystemExit) as e:
        cli.parse(argv)
    return e.value.code, capsys.readouterr().err


def _fake_find(present):
    return lambda name: f"/usr/bin/{name}" if name in present else None


# --- the image --------------------------------------------------------------------------------

def test_v2_image_mounts_only_cgroup2_and_enables_controllers(tmp_path):
    helper = tmp_path / "helper"
    shutil.copy("/bin/true", helper)
    img = ir.build_guest("/bin/true", "", ["--scenario", "x"], "tcg", "box-vm", want_modules=(),
                         busybox=shutil.which("busybox") or "/bin/true", cgroup="v2",
                         programs=["/bin/true"], ship={rt.GUEST_HELPER: str(helper)})
    e = ir.read_cpio(img.archive.to_cpio())
    script = e["kmatrix/cgroup"].data.decode()
    assert "mount -t cgroup2" in script and "/sys/fs/cgroup" in script
    assert "mount -t cgroup " not in script  # no v1 hierarchy
    assert "cgroup.subtree_control" in script and 'echo "+$c"' in script
    assert "cgroup_no_v1=all" in script  # the guest checks its command line
    assert '[ "$mounts" = "cgroup2:/sys/fs/cgroup" ]' in script  # anything else fails the boot
    stage2 = e["kmatrix/stage2"].data.decode()
    assert ". /kmatrix/cgroup" in stage2
    assert "/usr/sbin" in stage2  # runc lives there
    assert ir.FILE in stage2 and ir.GUEST_OUT in stage2  # /tmp/out streams back
    assert stat.S_ISDIR(e["run"].mode)
    assert e[rt.GUEST_HELPER.lstrip("/")].mode & 0o111
    assert e["bin/true"].mode & 0o111  # a program at its own path, with its libraries
    for lib in ir.shared_libraries("/bin/true"):
        assert lib.lstrip("/") in e, lib


def test_default_image_has_no_cgroup_script(tmp_path):
    img = ir.build_guest("/bin/true", "", [], "tcg", "box-vm", want_modules=(),
                         busybox=shutil.which("busybox") or "/bin/true")
    e = ir.read_cpio(img.archive.to_cpio())
    assert "kmatrix/cgroup" not in e
    assert "[ -f /kmatrix/cgroup ]" in e["kmatrix/stage2"].data.decode()


def test_image_refuses_an_unknown_cgroup_mode():
    with pytest.raises(ir.ImageError, match="'v1'"):
        ir.build_guest("/bin/true", "", [], "tcg", "m", want_modules=(), cgroup="v1")


def test_real_runtimes_and_their_libraries_go_in_at_their_paths():
    programs, missing = rt.guest_programs()
    if "runc" in missing or "crun" in missing:
        pytest.skip(f"not installed here: {', '.join(missing)} (scripts/setup.sh installs them)")
    img = ir.build_guest("/bin/true", "", [], "tcg", "m", want_modules=(), cgroup="v2",
                         busybox=shutil.which("busybox") or "/bin/true", programs=programs)
    e = ir.read_cpio(img.archive.to_cpio())
    for p in programs:
        assert p.lstrip("/") in e and e[p.lstrip("/")].mode & 0o111, p
    for lib in ir.shared_libraries(rt.which("crun")):  # libyajl, libseccomp, libcap, ...
        assert lib.lstrip("/") in e, lib


def test_run_script_runs_each_step_keeps_its_output_and_exit_then_mntscale():
    steps = rt.steps(["crun"])
    text = ir.run_script(["--scenario", "container_start_storm"], steps)
    lines = text.splitlines()
    assert lines[0] == "#!/bin/busybox sh"
    gtest = next(l for l in lines if l.startswith(rt.GUEST_GTEST))
    assert "'--gtest_filter=RuntimeTest.*Crun*'" in gtest
    assert f"--gtest_output=json:{ir.GUEST_OUT}/runtime_gtest.json" in gtest
    assert gtest.endswith(f"> {ir.GUEST_OUT}/runtime_gtest.log 2>&1")
    assert f"echo $? > {ir.GUEST_OUT}/runtime_gtest.exit" in lines
    capture = next(l for l in lines if "profile capture" in l)
    assert capture.startswith("/mntscale/mntscale profile capture --runtime crun --out /tmp/out/capture-crun.json")
    assert lines[-1].startswith("exec /mntscale/mntscale run --scenario container_start_storm")
    assert lines[-1].endswith("--out /tmp/result.json")
    # Without steps the script is the plain run, as before.
    assert ir.run_script(["--x"]).splitlines()[1:] == ["exec /mntscale/mntscale run --x --out /tmp/result.json"]


def test_gtest_beside_the_helper_finds_it_as_runtime_cc_does():
    # HelperPath(): EXE_DIR/mntscale-mountinfo, then EXE_DIR/../mntscale-mountinfo.
    assert os.path.normpath(os.path.join(os.path.dirname(rt.GUEST_GTEST), "..", "mntscale-mountinfo")) \
        == rt.GUEST_HELPER
    assert os.path.dirname(rt.GUEST_HELPER) == "/mntscale"  # beside /mntscale/mntscale


# --- what the host reads back -------------------------------------------------------------------

def _payload(name, data):
    import base64
    import gzip
    return [f"{ir.FILE} {name}", base64.b64encode(gzip.compress(data)).decode(), ir.END]


def test_console_gives_cgroup_mounts_and_guest_files():
    import base64
    import gzip
    lines = [f"{ir.CGROUPS} mounts=cgroup2:/sys/fs/cgroup no_v1=all subtree_control=cpu,memory,pids",
             f"{ir.READY} 6.1.0-57-cloud-amd64 cpus=2", f"{ir.RC} 0", ir.BEGIN,
             base64.b64encode(gzip.compress(b'{"r": 1}')).decode(), ir.END,
             *_payload("capture-crun.exit", b"0\n"), *_payload("../../etc/x", b"y")]
    out = vm.parse_console("\n".join(lines))
    assert out.ok and out.payload == b'{"r": 1}'
    assert out.cgroups == {"mounts": ["cgroup2:/sys/fs/cgroup"], "no_v1": ["all"],
                           "subtree_control": ["cpu", "memory", "pids"]}
    assert out.files == {"capture-crun.exit": b"0\n", "x": b"y"}  # a name, never a path


def test_a_file_cut_off_is_a_note_not_a_lost_result():
    import base64
    import gzip
    lines = [f"{ir.READY} r", f"{ir.RC} 0", ir.BEGIN, base64.b64encode(gzip.compress(b"{}")).decode(),
             ir.END, f"{ir.FILE} runtime_gtest.log", "QUJD"]
    out = vm.parse_console("\n".join(lines), timed_out=True)
    assert out.ok and any("runtime_gtest.log cut off" in n for n in out.notes)


GTEST_JSON = {"testsuites": [{"name": "RuntimeTest", "testsuite": [
    {"name": "FarmMatchesRuncDefaultMountForMount", "result": "COMPLETED"},
    {"name": "FarmMatchesCrunDefaultOrSaysWhyNot", "result": "SKIPPED"},
    {"name": "RuntimeFarmContainersMatchTheBuiltInFarm", "result": "COMPLETED",
     "failures": [{"failure": "runtime_gtest.cc:120\nExpected equality"}]}]}]}
GTEST_LOG = """[ RUN      ] RuntimeTest.FarmMatchesCrunDefaultOrSaysWhyNot
../../tests/privileged/runtime_gtest.cc:115: Skipped
unsupported: crun 1.8.1 cannot run a container on this host
[  SKIPPED ] RuntimeTest.FarmMatchesCrunDefaultOrSaysWhyNot (185 ms)
"""


def _capture(runtime, count):
    return json.dumps({"captured": {"runtime": runtime, "kernel": "6.1.0-57-cloud-amd64",
                                    "mount_count": count}}).encode()


def test_fidelity_summary_names_passes_failures_skips_and_captures():
    files = {"runtime_gtest.json": json.dumps(GTEST_JSON).encode(), "runtime_gtest.log": GTEST_LOG.encode(),
             "capture-runc.exit": b"0\n", "capture-runc.json": _capture("runc 1.1.5", 18),
             "capture-crun.exit": b"3\n"}
    s = rt.fidelity_summary(files, ["runc", "crun"])
    assert s["passed"] == ["RuntimeTest.FarmMatchesRuncDefaultMountForMount"]
    assert s["failed"] == ["RuntimeTest.RuntimeFarmContainersMatchTheBuiltInFarm"]
    assert s["skipped"] == {"RuntimeTest.FarmMatchesCrunDefaultOrSaysWhyNot":
                            "unsupported: crun 1.8.1 cannot run a container on this host"}
    assert s["captures"]["runc"]["mount_count"] == 18 and "crun" not in s["captures"]
    assert any("capture with crun exited 3" in p for p in s["problems"])
    assert any("RuntimeFarmContainersMatchTheBuiltInFarm failed: runtime_gtest.cc:120" in p
               for p in s["problems"])
    assert "1 passed, 1 failed, 1 skipped" in rt.describe(s)


def test_fidelity_without_gtest_output_or_with_no_test_matched_is_a_problem():
    s = rt.fidelity_summary({"runtime_gtest.exit": b"127\n"}, ["crun"])
    assert "runtime_gtest wrote no JSON (exit 127)" in s["problems"]
    s = rt.fidelity_summary({"runtime_gtest.json": b'{"testsuites": []}'}, ["crun"])
    assert any("no test matched" in p for p in s["problems"])


def test_gtest_filter_per_runtime():
    assert rt.gtest_filter(["crun"]) == "RuntimeTest.*Crun*"
    assert rt.gtest_filter(["runc"]).startswith("RuntimeTest.*Runc*:")


# --- the command line: refusals before anything is built ----------------------------------------

@pytest.mark.parametrize("value", ["v1", "hybrid", "V2", ""])
def test_unknown_cgroup_value_exits_2_naming_it_and_the_known_one(tmp_path, capsys, value):
    code, err = _parse_exit(capsys, ["--binary", _binary_dir(tmp_path), "--cgroup", value,
                                     "--out", str(tmp_path / "o"), "linux-image-cloud-amd64"])
    assert code == 2
    assert f"--cgroup '{value}'" in err and "known: v2" in err


def test_bad_cgroup_exits_before_any_kernel_is_fetched(tmp_path, capsys, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("resolved a kernel before refusing --cgroup")
    monkeypatch.setattr(cli.kmod, "resolve", boom)
    monkeypatch.setattr(cli.ir, "build_guest", boom)
    with pytest.raises(SystemExit) as e:
        cli.main(["--binary", _binary_dir(tmp_path), "--cgroup", "v1", "--out", str(tmp_path / "o"),
                  "linux-image-cloud-amd64"])
    assert e.value.code == 2
    assert not (tmp_path / "o").exists()


def test_cgroup_with_native_is_refused(tmp_path, capsys):
    code, err = _parse_exit(capsys, ["--binary", _binary_dir(tmp_path), "--cgroup", "v2", "native"])
    assert code == 2 and "native" in err


def test_cgroup_without_the_static_helper_is_refused(tmp_path, capsys):
    code, err = _parse_exit(capsys, ["--binary", _binary_dir(tmp_path, helper=False), "--cgroup", "v2",
                                     "linux-image-cloud-amd64"])
    assert code == 2 and "mntscale-mountinfo" in err


@pytest.mark.parametrize("value,says", [("docker", "unknown runtime 'docker'"),
                                        ("runc,", "separated by commas"),
                                        ("", "separated by commas")])
def test_bad_runtime_fidelity_exits_2(tmp_path, capsys, value, says):
    code, err = _parse_exit(capsys, ["--binary", _binary_dir(tmp_path), "--runtime-fidelity", value,
                                     "linux-image-cloud-amd64"])
    assert code == 2 and says in err


def test_runtime_fidelity_without_the_gtest_is_refused(tmp_path, capsys):
    code, err = _parse_exit(capsys, ["--binary", _binary_dir(tmp_path, gtest=False), "--cgroup", "v2",
                                     "--runtime-fidelity", "crun", "linux-image-cloud-amd64"])
    assert code == 2 and "privileged_runtime_gtest" in err


def test_gtest_binary_alone_is_refused(tmp_path, capsys):
    code, err = _parse_exit(capsys, ["--binary", _binary_dir(tmp_path), "--gtest-binary", "/bin/true",
                                     "linux-image-cloud-amd64"])
    assert code == 2 and "--runtime-fidelity" in err


class _Parser:
    def error(self, msg):
        raise SystemExit(msg)


def _opts(tmp_path, cgroup="v2", fidelity=None):
    import argparse
    return argparse.Namespace(cgroup=cgroup, fidelity_arg=fidelity, gtest_binary=None,
                              binary=_binary_dir(tmp_path), kernels=["linux-image-cloud-amd64"],
                              baseline=None, candidate=None)


def test_a_runtime_not_installed_here_is_refused(tmp_path):
    o = _opts(tmp_path, fidelity="runc,crun")
    with pytest.raises(SystemExit, match="--runtime-fidelity crun: crun is not installed"):
        cli.check_runtime_options(_Parser(), o, find=_fake_find({"runc"}))
    with pytest.raises(SystemExit, match="neither runc nor crun"):
        cli.check_runtime_options(_Parser(), _opts(tmp_path), find=_fake_find(set()))


def test_v2_guest_payload_ships_runtimes_containerd_helper_and_gtest(tmp_path):
    o = _opts(tmp_path, fidelity="crun,runc,crun")
    cli.check_runtime_options(_Parser(), o, find=_fake_find(set(rt.RUNTIMES + rt.CONTAINERD)))
    assert o.fidelity == ["crun", "runc"]
    programs, ship, steps = cli.guest_payload(o)
    assert programs == [f"/usr/bin/{n}" for n in ("runc", "crun", "containerd", "ctr",
                                                  "containerd-shim-runc-v2")]
    assert ship == {rt.GUEST_HELPER: str(tmp_path / "mntscale-mountinfo"),
                    rt.GUEST_GTEST: str(tmp_path / "tests" / "privileged_runtime_gtest")}
    assert [s[0] for s in steps] == ["runtime_gtest", "capture-crun", "capture-runc"]
    o.append = "mitigations=off"
    assert cli.guest_cmdline(o) == "mitigations=off cgroup_no_v1=all"


def test_containerd_missing_is_not_a_refusal(tmp_path):
    o = _opts(tmp_path)
    cli.check_runtime_options(_Parser(), o, find=_fake_find({"runc", "crun"}))
    assert o.programs == ["/usr/bin/runc", "/usr/bin/crun"]


def test_default_guest_is_unchanged(tmp_path):
    o = cli.parse(["--binary", _binary_dir(tmp_path), "--out", str(tmp_path / "o"), "linux-image-cloud-amd64"])
    assert o.cgroup is None and o.fidelity == []
    assert cli.guest_payload(o) == ([], {}, [])
    assert cli.guest_cmdline(o) == ""
