"""--append reaches the guest kernel's command line (qemu -append)."""
from kmatrix import vm


class _Topo:
    def qemu_args(self):
        return ["-smp", "1"]


def test_cmdline_extra_is_appended_to_qemu_append():
    argv = vm.qemu_argv("/k", "/i", "tcg", _Topo(), cmdline_extra="mitigations=off")
    assert argv[argv.index("-append") + 1].endswith("rdinit=/init mitigations=off")


# That kernel-matrix hands --append to the boot is checked by a real boot:
# tests/kmatrix/boot_append_attribute.sh (label slow) finds the marker in the
# guest's /proc/cmdline, as the result's context.platform.cmdline records it.


def test_append_option_is_parsed():
    from kmatrix import cli
    opts = cli.parse(["--binary", "/bin/true", "--append", "mitigations=off", "--out", "/tmp/x",
                      "linux-image-6.12-cloud-amd64"])
    assert opts.append == "mitigations=off"
