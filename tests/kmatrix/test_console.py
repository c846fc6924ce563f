"""Reading the guest's serial console: results, panics, timeouts, missing overlayfs."""

import base64
import gzip
import json

from kmatrix import initramfs as ir
from kmatrix import vm

RESULT = {"schema": "mntscale-result", "context": {"kernel": {"release": "6.1.0-56-cloud-amd64"}}}


def payload_lines(obj, width=76):
    b = base64.b64encode(gzip.compress(json.dumps(obj).encode())).decode()
    return [b[i:i + width] for i in range(0, len(b), width)]


def console(*middle):
    return "\n".join(["SeaBIOS", "[    0.1] Linux version 6.1.0", f"{ir.READY} 6.1.0-56-cloud-amd64 cpus=2",
                      *middle]) + "\n"


def test_result_comes_back_through_printk_noise():
    text = console("progress...", f"{ir.RC} 0", ir.BEGIN, *payload_lines(RESULT),
                   "[   12.3] random: crng init done", ir.END, "[ 13.0] reboot: Power down")
    out = vm.parse_console(text)
    assert out.ok and out.release == "6.1.0-56-cloud-amd64" and out.rc == 0
    assert json.loads(out.payload) == RESULT


def test_panic_is_a_failure_with_its_reason():
    text = "Linux version 6.1\n[0.06] Kernel panic - not syncing: IO-APIC + timer doesn't work!\n"
    out = vm.parse_console(text)
    assert not out.ok and "IO-APIC" in out.reason


def test_missing_overlayfs_reported_by_the_guest():
    text = console(f"{ir.FAIL} filesystem overlay not available on 6.1.0-56-cloud-amd64")
    out = vm.parse_console(text)
    assert not out.ok and "overlay not available" in out.reason


def test_timeout_before_userspace():
    out = vm.parse_console("SeaBIOS\nBooting from ROM...\n", timed_out=True, timeout=30)
    assert not out.ok and "timed out after 30s before userspace" in out.reason


def test_cut_off_payload_is_not_a_result():
    text = console(f"{ir.RC} 0", ir.BEGIN, *payload_lines(RESULT)[:1])
    out = vm.parse_console(text, timed_out=True, timeout=60)
    assert not out.ok and "cut off" in out.reason


def test_mntscale_failure_without_result():
    out = vm.parse_console(console("error: usage", f"{ir.RC} 2"))
    assert not out.ok and "exited 2" in out.reason


def test_partial_result_is_kept_with_a_note():
    out = vm.parse_console(console(f"{ir.RC} 1", ir.BEGIN, *payload_lines(RESULT), ir.END))
    assert out.ok and any("exited 1" in n for n in out.notes)


def test_console_tail_drops_payload_lines():
    text = console(ir.BEGIN, *payload_lines({"x": "y" * 500}), ir.END, "last words")
    tail = vm.console_tail(text, 3)
    assert tail.splitlines()[-1] == "last words" and "@@KMATRIX-BEGIN@@" in tail
