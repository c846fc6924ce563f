"""`machines` (issue 13): two machines' invocation directories compared, on real-run fixtures.

fixtures/machines/hostA and hostB are real `mntscale run`s of this host labelled as two
machines (MNTSCALE_MACHINE), 3 invocations each, made by fixtures/machines/make.sh. The
expected ratios are recomputed here from the raw JSON, not through the report's code.
"""

import glob
import json
import os
import re
import shutil

import pytest

from conftest import FIXTURES, run_cli
from mntscale_reports import machines, stats

MACHINES = os.path.join(FIXTURES, "machines")
HOST_A, HOST_B = os.path.join(MACHINES, "hostA"), os.path.join(MACHINES, "hostB")
FIGURES = ("throughput", "per-core", "efficiency", "cross-socket", "churn", "smt", "start-storm")


def _report(tmp_path, *dirs, name="out"):
    """The CLI end to end, plots included: (machines.json, outdir, completed process)."""
    out = tmp_path / name
    proc = run_cli("machines", *dirs, "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((out / "machines.json").read_text(encoding="utf-8")), out, proc


def _tables(*dirs, quiet=True):
    """Tables and findings only, in process (no plots): what most tests check.

    The recorded fixtures were measured on a shared VM: every path_walk repetition carries
    "noisy", and issue 23 withholds sentences drawn from such points (see
    test_noisy_machines_state_no_sentence). ``quiet`` drops the flags, so the sentences'
    logic is tested on the numbers as if they were quiet."""
    found, errors = machines.load_machines([str(d) for d in dirs])
    for m in found if quiet else ():
        for p in (p for pts in m.points.values() for p in pts):
            for rep in p.reps:
                rep.pop("noisy", None)
    return machines.to_json(machines.build(found, errors))


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory):
    return _report(tmp_path_factory.mktemp("machines"), HOST_A, HOST_B)


def _table(doc, prefix):
    return next(t for t in doc["tables"] if t["title"].startswith(prefix))


def _per_core_by_file(directory, containers, workers=2, placement="spread"):
    """Raw per-invocation path_walk ops/s per core used, read straight from the files."""
    out = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        doc = json.load(open(path, encoding="utf-8"))
        vals = []
        for b in doc["benchmarks"]:
            p = b.get("params", {})
            if (b.get("scenario") == "path_walk" and "items_per_second" in b and p.get("containers") == containers
                    and p.get("workers") == workers and p.get("placement") == placement):
                cores = {(w["package"], w["core"]) for w in b["workers"]}
                vals.append(b["items_per_second"] / len(cores))
        if vals:
            out.append(sum(vals) / len(vals))
    return out


def _copy(src, dst, scale=1.0, name=None, knee_at_two=False, topology=None):
    """A copy of a machine directory, path_walk throughput scaled (a faster or slower "machine")."""
    os.makedirs(dst)
    for path in glob.glob(os.path.join(src, "*.json")):
        doc = json.load(open(path, encoding="utf-8"))
        if name is None:
            doc["context"].pop("machine", None)
        else:
            doc["context"]["machine"]["name"] = name
        if topology:
            doc["context"]["topology"].update(topology)
        for b in doc["benchmarks"]:
            if b.get("scenario") == "path_walk" and "items_per_second" in b:
                f = scale * (0.5 if knee_at_two and b["params"]["workers"] == 2 else 1.0)
                for k in ("items_per_second", "ops_per_sec", "ops_per_sec_per_worker"):
                    b[k] *= f
                b["windows"] = [w * f for w in b["windows"]]
        with open(os.path.join(dst, os.path.basename(path)), "w", encoding="utf-8") as f:
            json.dump(doc, f)
    return dst


def test_sustained_ratio_and_ci_match_the_invocations(fixture_report):
    doc, _, _ = fixture_report
    rows = _table(doc, "Sustained throughput")["rows"]
    assert [m["name"] for m in doc["machines"]] == ["hostA", "hostB"]
    for containers in (10, 100):
        a, b = _per_core_by_file(HOST_A, containers), _per_core_by_file(HOST_B, containers)
        assert len(a) == len(b) == 3
        expected = (sum(b) / 3) / (sum(a) / 3)
        row = next(r for r in rows if r[0] == f"{containers} containers" and r[1] == "hostB")
        assert row[7] == f"{expected:.2f}×", row
        assert row[5] == "3"
        lo, hi = (float(x) for x in re.match(r"([\d.]+)–([\d.]+)×", row[8]).groups())
        assert lo <= round(expected, 2) <= hi
        # The CI is the bootstrap over invocations (not repetitions), seeded per point.
        seed_lo, seed_hi = stats.bootstrap_pct_ci(a, b, 0)
        assert abs(lo - (1 + seed_lo / 100)) < 0.15 and abs(hi - (1 + seed_hi / 100)) < 0.15
        ref = next(r for r in rows if r[0] == f"{containers} containers" and r[1] == "hostA")
        assert ref[6] == "reference"


def test_unsupported_points_say_why_and_are_never_zero(fixture_report):
    doc, out, _ = fixture_report
    churn = _table(doc, "Mount churn")["rows"]
    for machine in ("hostA", "hostB"):
        row = next(r for r in churn if r[0] == machine and r[2] == "other-socket")
        assert row[3] == "unsupported: one socket" and row[4] == "0", row
        assert row[1] == "writer_op=mount, writers=1, containers=1, workers=1, op=stat, rounds=1"
        same = next(r for r in churn if r[0] == machine and r[2] == "same-socket")
        assert 0 < float(same[3]) < 2 and same[4] == "3"
    reasons = {(u["machine"], u["reason"]) for u in doc["unsupported"]}
    assert ("hostA", "unsupported: one socket") in reasons and ("hostB", "not measured on hostB") in reasons
    assert any(f.startswith("hostA: churn_interference") and "reader_placement=other-socket is unsupported: one socket"
               in f for f in doc["findings"])
    # compact exists on hostA only: hostB's line is absent from that panel (not drawn at 0).
    compact = [ln for ln in doc["lines"] if ln["figure"] == "throughput" and ln["panel"].endswith(", compact")]
    assert compact and {ln["machine"] for ln in compact} == {"hostA"}
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "unsupported: one socket" in html and "not measured on hostB" in html


def test_each_machine_keeps_one_colour_in_every_panel_and_axes_are_shared(fixture_report):
    doc, out, _ = fixture_report
    colours = {}
    for ln in doc["lines"]:
        colours.setdefault(ln["machine"], set()).add(ln["color"])
    assert set(colours) == {"hostA", "hostB"}
    assert all(len(c) == 1 for c in colours.values()), colours
    assert colours["hostA"] != colours["hostB"]
    assert {m["name"]: {m["color"]} for m in doc["machines"]} == colours
    for figure in FIGURES:
        assert {ln["machine"] for ln in doc["lines"] if ln["figure"] == figure} == {"hostA", "hostB"}, figure
        assert (out / f"machines-{figure}.png").stat().st_size > 0
    for figure in ("throughput", "per-core", "efficiency", "cross-socket", "smt"):
        panels = [p for p in doc["panels"] if p["figure"] == figure]
        assert len(panels) >= 2 and all(p["sharey"] for p in panels)
        assert len({tuple(p["ylim"]) for p in panels}) == 1, (figure, panels)


def test_colour_belongs_to_the_machine_not_to_its_place_in_a_panel(tmp_path):
    """hostC measured only compact, where hostB drew nothing: a per-panel colour cycle would give
    hostC hostB's colour there."""
    only_compact = tmp_path / "hostC"
    only_compact.mkdir()
    for path in glob.glob(os.path.join(HOST_A, "inv*-path_walk-compact.json")):
        doc = json.load(open(path, encoding="utf-8"))
        doc["context"]["machine"]["name"] = "hostC"
        (only_compact / os.path.basename(path)).write_text(json.dumps(doc), encoding="utf-8")
    found, errors = machines.load_machines([HOST_A, HOST_B, str(only_compact)])
    rep = machines.build(found, errors)
    machines.render_plots(rep, str(tmp_path))
    colours = {}
    for ln in rep.drawn:
        colours.setdefault(ln["machine"], set()).add(ln["color"])
    assert {m: len(c) for m, c in colours.items()} == {"hostA": 1, "hostB": 1, "hostC": 1}, colours
    assert len(set.union(*colours.values())) == 3


def _four_invocations(d):
    """The fixture's 3 invocations and a 4th (a copy of the 1st, 2% slower), enough for a verdict."""
    for path in glob.glob(os.path.join(d, "inv1-*.json")):
        doc = json.load(open(path, encoding="utf-8"))
        doc["context"]["date"] = "2026-12-01T00:00:04+0000"
        for b in doc["benchmarks"]:
            if b.get("scenario") == "path_walk" and "items_per_second" in b:
                for k in ("items_per_second", "ops_per_sec", "ops_per_sec_per_worker"):
                    b[k] *= 0.98
                b["windows"] = [w * 0.98 for w in b["windows"]]
        with open(path.replace("inv1-", "inv4-"), "w", encoding="utf-8") as f:
            json.dump(doc, f)
    return d


def test_findings_name_the_machine_that_sustains_more(tmp_path):
    """hostB is hostA's own invocations with path walks 1.4× faster: the sentence must say so."""
    base = _four_invocations(_copy(HOST_A, tmp_path / "a", name="hostA"))
    faster = _four_invocations(_copy(HOST_A, tmp_path / "fast", scale=1.4, name="hostB"))
    doc = _tables(base, faster)
    sentence = next(f for f in doc["findings"] if "per core at 100 containers" in f)
    assert sentence.startswith("hostB sustains 1.40× hostA's path walks per core at 100 containers (95% CI "), sentence
    assert "4 invocations each" in sentence
    slower = _four_invocations(_copy(HOST_A, tmp_path / "slow", scale=0.5, name="hostB"))
    doc = _tables(base, slower)
    sentence = next(f for f in doc["findings"] if "per core at 10 containers" in f)
    assert sentence.startswith("hostA sustains 2.00× hostB's"), sentence


def test_noisy_machines_state_no_sentence(tmp_path):
    """Issue 23: the same comparison as recorded -- every path_walk repetition flagged noisy --
    states nothing about which machine sustains more; each sentence is listed as not stated."""
    base = _four_invocations(_copy(HOST_A, tmp_path / "a", name="hostA"))
    faster = _four_invocations(_copy(HOST_A, tmp_path / "fast", scale=1.4, name="hostB"))
    doc = _tables(base, faster, quiet=False)
    assert not any("sustains" in f or "knee at" in f for f in doc["findings"]), doc["findings"]
    said = [f for f in doc["findings"] if f.startswith("Not stated: hostB against hostA: path walks per core at 100 ")]
    assert len(said) == 1 and re.search(r"measured on a busy machine \((\d+) of \1 repetitions noisy\)", said[0]), said


def test_three_invocations_give_no_verdict(tmp_path):
    """compare's rule: a verdict needs 4 invocations per side; with 3 the sentence reads, never sustains."""
    faster = _copy(HOST_A, tmp_path / "fast", scale=1.4, name="hostB")
    doc = _tables(HOST_A, faster)
    sentence = next(f for f in doc["findings"] if "per core at 100 containers" in f)
    assert sentence.startswith("hostB reads 1.40× hostA's path walks per core at 100 containers (95% CI "), sentence
    assert "3 invocations each" in sentence and "no verdict" in sentence and "sustains" not in sentence


def test_same_speed_is_not_called_a_difference(tmp_path):
    same = _copy(HOST_A, tmp_path / "same", name="twin")
    doc = _tables(HOST_A, same)
    sentence = next(f for f in doc["findings"] if "per core at 100 containers" in f)
    assert sentence.startswith("twin and hostA are not told apart"), sentence
    assert "1.00×" in sentence


def test_one_invocation_has_no_ci(tmp_path):
    dirs = []
    for src in (HOST_A, HOST_B):
        d = tmp_path / os.path.basename(src)
        d.mkdir()
        for path in glob.glob(os.path.join(src, "inv1-*.json")):
            shutil.copy(path, d)
        dirs.append(d)
    doc = _tables(*dirs)
    row = next(r for r in _table(doc, "Sustained throughput")["rows"] if r[1] == "hostB")
    assert row[5] == "1" and row[8].startswith("CI not available"), row
    sentence = next(f for f in doc["findings"] if "per core at 10 containers" in f)
    assert "CI not available" in sentence and "95% CI" not in sentence, sentence


def test_knee_is_the_first_worker_count_below_the_bar(tmp_path, fixture_report):
    knees = _table(fixture_report[0], "Knee")["rows"]
    assert all(r[5].startswith("none up to 2 workers") for r in knees if r[2] == "spread" and float(r[4][:-1]) >= 80)
    halved = _copy(HOST_A, tmp_path / "knee", name="kneeB", knee_at_two=True)
    doc = _tables(HOST_A, halved)
    rows = [r for r in _table(doc, "Knee")["rows"] if r[0] == "kneeB" and r[2] == "spread"]
    assert rows and all(r[5].startswith("2 workers (efficiency") for r in rows), rows
    assert any(f.startswith("kneeB (100 containers, spread): knee at 2 workers") for f in doc["findings"])


def test_machine_name_falls_back_to_the_directory(tmp_path):
    unnamed = _copy(HOST_B, tmp_path / "epyc-box")
    doc = _tables(HOST_A, unnamed)
    assert [m["name"] for m in doc["machines"]] == ["hostA", "epyc-box"]


@pytest.mark.parametrize("args, message", [
    ((HOST_A,), "at least two directories"),
    ((HOST_A, HOST_A), "given more than once"),
    ((HOST_A, os.path.join(HOST_B, "inv1-storm.json")), "is not a directory"),
])
def test_bad_input_exits_2(args, message):
    proc = run_cli("machines", *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_empty_directory_exits_2(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_cli("machines", HOST_A, tmp_path / "empty")
    assert proc.returncode == 2 and "no result file could be loaded" in proc.stderr


def test_smt_and_socket_notes_follow_the_topology(tmp_path):
    """A machine whose topology has SMT siblings gets an SMT finding; one with two sockets loses the
    "one socket" caveat on its spread ÷ socket:0 rows. (Labels only: the numbers are this host's.)"""
    smt = _copy(HOST_A, tmp_path / "smt", name="smt2s", topology={"pus": 4, "cores": 2, "packages": 2})
    doc = _tables(HOST_A, smt)
    assert any(f.startswith("smt2s (100 containers): SMT off gives ") for f in doc["findings"]), doc["findings"]
    assert not any(f.startswith("hostA (100 containers): SMT off") for f in doc["findings"])
    cross = _table(doc, "Cross-socket penalty")["rows"]
    assert all("one socket" not in r[4] for r in cross if r[0] == "smt2s")
    assert all("one socket" in r[4] for r in cross if r[0] == "hostA")
    smt_rows = _table(doc, "SMT effect")["rows"]
    assert all("no SMT siblings" in r[4] for r in smt_rows if r[0] == "hostA")
    assert all("no SMT siblings" not in r[4] for r in smt_rows if r[0] == "smt2s")


def test_intro_names_each_kernel_and_marks_an_emulated_one(tmp_path):
    guest = tmp_path / "guest"
    _copy(HOST_B, guest, name="tcg-2s")
    for path in glob.glob(os.path.join(guest, "*.json")):
        doc = json.load(open(path, encoding="utf-8"))
        doc["context"]["kernel"].update({"release": "6.1.0-57-cloud-amd64", "emulated": True, "accelerator": "tcg"})
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)
    found, errors = machines.load_machines([HOST_A, str(guest)])
    intro = machines.build(found, errors).intro()
    assert "kernel 6.1.0-57-cloud-amd64 (emulated: tcg; not hardware timings)" in intro, intro
    assert "ran different kernels" in intro, intro
