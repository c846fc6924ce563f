"""--append reaches the guest kernel's command line (qemu -append)."""
from kmatrix import vm


class _Topo:
    def qemu_args(self):
        return ["-smp", "1"]


def test_cmdline_extra_is_appended_to_qemu_append():
    argv = vm.qemu_argv("/k", "/i", "tcg", _Topo(), cmdline_extra="mitigations=off")
    assert argv[argv.index("-append") + 1].endswith("rdinit=/init mitigations=off")


def test_kernel_matrix_passes_append_to_boot():
    import inspect
    from kmatrix import cli
    assert 'cmdline_extra=getattr(opts, "append"' in inspect.getsource(cli)


def test_append_option_is_parsed():
    from kmatrix import cli
    opts = cli.parse(["--binary", "/bin/true", "--append", "mitigations=off", "--out", "/tmp/x",
                      "linux-image-6.12-cloud-amd64"])
    assert opts.append == "mitigations=off"
