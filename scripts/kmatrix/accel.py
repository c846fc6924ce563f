"""KVM or TCG: decided by timing a tiny guest, not by /dev/kvm existing.

Nested KVM can exist and still be far slower than TCG (every guest exit bounces
through the outer hypervisor); here it is. The probe boots the same small image
under each accelerator and times boot-to-marker on the host's clock.
"""

from dataclasses import dataclass
from typing import Optional

# KVM must beat TCG by this factor: at speed it is many times faster, and a KVM that
# only matches TCG is a nested one whose timings mean little.
KVM_ADVANTAGE = 0.5


@dataclass
class ProbeResult:
    accel: str
    seconds: Optional[float]  # None: did not reach the marker (failed / timed out)
    note: str = ""


def decide(tcg: ProbeResult, kvm: Optional[ProbeResult], advantage=KVM_ADVANTAGE):
    """(accelerator, reason) from probe timings. Pure: the unit tests drive it.

    kvm is None when it was not tried (no /dev/kvm). KVM wins only when it reached the
    marker in at most `advantage` x TCG's time; TCG is the fallback, and when neither
    works there is nothing to run on.
    """
    kvm_ok = kvm is not None and kvm.seconds is not None
    tcg_ok = tcg is not None and tcg.seconds is not None
    if kvm_ok and tcg_ok:
        if kvm.seconds <= advantage * tcg.seconds:
            return "kvm", f"kvm {kvm.seconds:.2f}s <= {advantage:g} x tcg {tcg.seconds:.2f}s"
        return "tcg", f"kvm {kvm.seconds:.2f}s is not at speed (tcg {tcg.seconds:.2f}s)"
    if kvm_ok:
        return "kvm", f"kvm {kvm.seconds:.2f}s; tcg failed: {tcg.note if tcg else 'not tried'}"
    if tcg_ok:
        why = "no usable /dev/kvm" if kvm is None else f"kvm probe failed: {kvm.note}"
        return "tcg", f"tcg {tcg.seconds:.2f}s; {why}"
    raise RuntimeError("neither accelerator booted the probe: "
                       f"tcg: {tcg.note if tcg else 'not tried'}; kvm: {kvm.note if kvm else 'not tried'}")


def kvm_timeout(tcg_seconds, advantage=KVM_ADVANTAGE, floor=5.0):
    """How long the KVM probe may run: past advantage x TCG it cannot win (20 % slack)."""
    return max(floor, 1.2 * advantage * tcg_seconds)
