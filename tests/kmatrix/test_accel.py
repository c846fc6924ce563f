"""The accelerator decision: timings in, choice out; never /dev/kvm's mere presence."""

import pytest

from kmatrix.accel import ProbeResult, decide, kvm_timeout


def P(acc, s, note=""):
    return ProbeResult(acc, s, note)


def test_fast_kvm_wins():
    assert decide(P("tcg", 3.0), P("kvm", 0.6))[0] == "kvm"


def test_nested_kvm_slower_than_tcg_loses():
    acc, why = decide(P("tcg", 3.0), P("kvm", 40.0))
    assert acc == "tcg" and "not at speed" in why


def test_kvm_only_marginally_faster_loses():
    assert decide(P("tcg", 3.0), P("kvm", 2.0))[0] == "tcg"
    assert decide(P("tcg", 3.0), P("kvm", 1.5))[0] == "kvm"  # exactly the advantage


def test_kvm_that_failed_or_timed_out_gives_tcg():
    acc, why = decide(P("tcg", 3.0), P("kvm", None, "no marker within 6.0s (killed)"))
    assert acc == "tcg" and "killed" in why


def test_no_dev_kvm_gives_tcg():
    acc, why = decide(P("tcg", 3.0), None)
    assert acc == "tcg" and "no usable /dev/kvm" in why


def test_kvm_alone_when_tcg_failed():
    assert decide(P("tcg", None, "boom"), P("kvm", 0.5))[0] == "kvm"


def test_nothing_boots_is_an_error():
    with pytest.raises(RuntimeError, match="neither"):
        decide(P("tcg", None, "a"), P("kvm", None, "b"))


def test_kvm_probe_timeout_is_bounded_by_what_could_still_win():
    assert kvm_timeout(3.0) == 5.0  # floor
    assert kvm_timeout(20.0) == pytest.approx(12.0)
