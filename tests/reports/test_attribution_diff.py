"""The differential attribution (issue 29): time per op split by bucket and
symbol on two sides, the moves that explain a difference, and no table when
there is no difference or no attribution."""
import re

from mntscale_reports import attribution_diff as ad


def squeeze(text):
    """Table text with tabulate's column padding collapsed to one space."""
    return re.sub(r" {2,}", " ", text)


def entry(ips, buckets, symbols, samples=1000, workers=1):
    return {"run_type": "iteration", "run_name": "path_walk/containers:1", "params": {"workers": workers},
            "items_per_second": ips,
            "attribution": {"samples": samples, "bucket_samples": buckets,
                            "top_symbols": [{"symbol": s, "samples": n} for s, n in symbols.items()]}}


def doc(entries, emulated=False):
    return {"context": {"kernel": {"emulated": emulated}}, "benchmarks": entries}


# Side A: 20 us per op, 400 of 1000 samples in memset_erms (other_kernel);
# side B: 12.5 us per op and no memset_erms in its top list.
A = [entry(50000, {"other_kernel": 600, "path_walk": 400}, {"memset_erms": 400, "link_path_walk": 200}),
     entry(50000, {"other_kernel": 600, "path_walk": 400}, {"memset_erms": 400, "link_path_walk": 200})]
B = [entry(80000, {"other_kernel": 200, "path_walk": 800}, {"link_path_walk": 400, "memset_orig": 50}),
     entry(80000, {"other_kernel": 200, "path_walk": 800}, {"link_path_walk": 400, "memset_orig": 50})]


def test_profile_is_ns_per_op_split_by_sample_share():
    p = ad.point_profile(A)
    assert p["ns_per_op"] == 20000
    assert p["buckets"] == {"other_kernel": 12000, "path_walk": 8000}
    assert p["symbols"]["memset_erms"] == 8000
    # Two workers share the throughput: each op takes twice the time.
    assert ad.point_profile([entry(50000, {"user": 10}, {}, samples=10, workers=2)])["ns_per_op"] == 40000


def test_biggest_move_comes_first_and_missing_symbols_are_none():
    d = ad.diff(ad.point_profile(A), ad.point_profile(B))
    assert d["total"] == (20000, 12500, -7500)
    assert d["buckets"][0] == ("other_kernel", 12000, 2500, -9500)
    name, a, b, change = d["symbols"][0]
    assert (name, a, b, change) == ("memset_erms", 8000, None, -8000)


def test_section_explains_a_significant_difference_and_says_emulated():
    text = ad.section([("6.1", doc(A, emulated=True)), ("6.12", doc(B))])
    assert "## Why the kernels differ" in text
    assert "### path_walk/containers:1: 6.1 → 6.12" in text
    assert "| memset_erms | 8,000 | — | -8,000 |" in squeeze(text)
    assert "emulated (TCG)" in text
    assert "ranges apart" in text


def test_no_table_without_a_difference_or_without_attribution():
    same = ad.section([("a", doc(A)), ("b", doc(A))])
    assert "no difference to explain" in same and "###" not in same
    # Overlapping repetitions: a 9% mean change is not explained as a difference.
    wide = [entry(50000, {"user": 1}, {}), entry(40000, {"user": 1}, {})]
    wide_b = [entry(47000, {"user": 1}, {}), entry(36000, {"user": 1}, {})]
    assert "ranges overlap" in ad.section([("a", doc(wide)), ("b", doc(wide_b))])
    bare = [dict(e, attribution={"unsupported": "no perf"}) for e in A]
    assert ad.section([("a", doc(bare)), ("b", doc(B))]) == ""
    assert ad.section([("a", doc(A))]) == ""


# Recorded: path_walk (stat, 1 container, 1 worker, 3 repetitions, --attribute)
# in TCG guests of Debian's 6.1.0-57 and 6.12.117 cloud kernels (2026-12-04).
REC = __import__("os").path.join(__import__("os").path.dirname(__file__), "fixtures", "kmatrix-attribution")


def test_compare_says_why_from_recorded_kernels(capsys):
    from mntscale_reports import cli
    rc = cli.main(["compare", REC + "/61", REC + "/612"])
    out = capsys.readouterr().out
    assert rc in (0, 3), out
    assert "## Why A and B differ" in out
    # 6.1's time per stat goes to memset_erms (rep stosb, which TCG runs slowly).
    rows = [l for l in squeeze(out).splitlines() if l.startswith("| memset_erms |")]
    assert rows and rows[0].endswith("| — | -8,891 |"), rows
    assert "emulated (TCG)" in out


def test_report_of_two_kernels_holds_the_differential_table(tmp_path):
    from mntscale_reports import cli
    out = tmp_path / "rep"
    rc = cli.main(["report", str(out), REC + "/61/6.1.0-57-cloud-amd64.json",
                   REC + "/612/6.12.117+deb12-cloud-amd64.json"])
    assert rc == 0
    page = (out / "index.html").read_text()
    summary = (out / "summary.md").read_text()
    for text in (page, summary):
        assert "Why the kernels differ: path_walk/layers:10/containers:1/workers:1/op:stat" in text
        assert "symbol memset_erms" in text and "-8,891" in text
    # One kernel: nothing to explain, no such table.
    one = tmp_path / "one"
    assert cli.main(["report", str(one), REC + "/61/6.1.0-57-cloud-amd64.json"]) == 0
    assert "Why the kernels differ" not in (one / "index.html").read_text()


def with_waits(e, blocked, wall=2.0):
    e = dict(e)
    e["workers"] = [{"role": "reader", "measured": True}, {"role": "writer", "measured": False}]
    e["time_decomposition"] = {"roles": {
        "reader": {"wall_s": wall, "blocked_s": blocked},
        "writer": {"wall_s": wall, "blocked_s": {"rcu_wait": 1.9}}}}  # not measured: not counted
    return e


def test_waits_runs_add_blocked_time_per_op_by_bucket():
    a = [with_waits(x, {"namespace_sem": 0.2}) for x in A]  # 10% of 20 us
    b = [with_waits(x, {"namespace_sem": 0.8, "rcu_wait": 0.1}) for x in B]  # 40%, 5% of 12.5 us
    pa, pb = ad.point_profile(a), ad.point_profile(b)
    assert pa["blocked"] == {"namespace_sem": 2000}
    assert pb["blocked"] == {"namespace_sem": 5000, "rcu_wait": 625}
    d = ad.diff(pa, pb)
    assert d["blocked"][0] == ("namespace_sem", 2000, 5000, 3000)
    assert ("rcu_wait", None, 625, 625) in d["blocked"]
    text = ad.section([("a", doc(a)), ("b", doc(b))])
    assert "| blocked, off CPU (--waits) | a ns/op | b ns/op | change |" in squeeze(text)
    assert "| namespace_sem | 2,000 | 5,000 | +3,000 |" in squeeze(text)
    # Without --waits there is no blocked table.
    assert "blocked, off CPU" not in ad.section([("a", doc(A)), ("b", doc(B))])
