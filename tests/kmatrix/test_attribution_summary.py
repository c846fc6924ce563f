"""The kernel-matrix summary and qualify explain a difference between kernels
from recorded guest results (issue 29): path_walk with --attribute on Debian's
6.1.0-57 and 6.12.117 under TCG, where 6.1's time goes to memset_erms."""
import os
import re
import shutil

from kmatrix import cli


def squeeze(text):
    """Table text with tabulate's column padding collapsed to one space."""
    return re.sub(r" {2,}", " ", text)

REC = os.path.join(os.path.dirname(__file__), "..", "reports", "fixtures", "kmatrix-attribution")
FILES = {"6.1.0-57-cloud-amd64": os.path.join(REC, "61", "6.1.0-57-cloud-amd64.json"),
         "6.12.117+deb12-cloud-amd64": os.path.join(REC, "612", "6.12.117+deb12-cloud-amd64.json")}


def runs():
    return [cli.KernelRun(spec=label, label=label, kind="vm", ok=True, release=label, accelerator="tcg",
                          result=path, measured=1) for label, path in FILES.items()]


def test_summary_holds_the_differential_table(tmp_path):
    text = cli.write_summary(str(tmp_path), runs(), {"mode": "matrix"})
    assert "## Why the kernels differ (attribution, ns per operation)" in text
    assert "### path_walk/layers:10/containers:1/workers:1/op:stat: 6.1.0-57-cloud-amd64 → 6.12.117" in text
    assert "| memset_erms | 8,891 | — | -8,891 |" in squeeze(text)
    assert "emulated (TCG)" in text
    assert open(tmp_path / "summary.md").read() == text


def test_qualify_says_why_the_candidate_differs(tmp_path, capsys):
    from mntscale_reports import cli as rcli  # scripts/mntscale_reports (conftest.py puts scripts/ on the path)
    ref, cand = tmp_path / "ref", tmp_path / "cand"
    ref.mkdir()
    cand.mkdir()
    shutil.copy(FILES["6.12.117+deb12-cloud-amd64"], ref)
    shutil.copy(FILES["6.1.0-57-cloud-amd64"], cand)
    rcli.main(["qualify", str(cand), "--reference", str(ref), "--no-facts", "--cross-machine",
               "--min-invocations", "2"])
    out = capsys.readouterr().out
    assert "## Why the candidate differs (attribution, ns per operation)" in out, out[-3000:]
    assert "| memset_erms | — | 8,891 | +8,891 |" in squeeze(out)
