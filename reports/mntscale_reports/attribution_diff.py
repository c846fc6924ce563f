"""Why two kernels differ: the time of one operation, decomposed (issue 29).

For a point measured with --attribute on two kernels (or two sides of an
A/B), each side's time per operation (workers / items_per_second) is split by
the share of cpu-clock samples in each attribution bucket and each top kernel
symbol, pooled over the point's repetitions: ns per operation per bucket and
per symbol, as `perf diff` compares two profiles; for --waits runs also the
off-CPU (blocked) time per op by bucket, from the time decomposition. The
buckets and symbols that grew or shrank most explain the difference.

Under emulation (TCG) absolute times are the emulator's, not a CPU's: the
shares within one guest are meaningful, and a symbol that one kernel uses and
the other does not (memset_erms against memset_orig) can be an emulation
effect rather than a kernel one. Every table says so when a side is emulated.
"""
import statistics

EMULATED_NOTE = ("emulated (TCG): absolute ns are the emulator's; shares within one guest are "
                 "meaningful, and an instruction the emulator runs slowly (rep stosb in "
                 "memset_erms, for one) shows as a kernel difference that a real CPU may not have")


def _usable(entry):
    a = entry.get("attribution")
    return (isinstance(a, dict) and "unsupported" not in a and a.get("samples")
            and entry.get("items_per_second"))


def point_profile(entries):
    """ns per op, by bucket and by top symbol, pooled over repetitions; None
    when no entry has attribution and a throughput."""
    entries = [e for e in entries if _usable(e)]
    if not entries:
        return None
    workers = [max(1, int(e.get("params", {}).get("workers", 1) or 1)) for e in entries]
    ns_op = [1e9 * w / e["items_per_second"] for e, w in zip(entries, workers)]
    samples = sum(e["attribution"]["samples"] for e in entries)
    mean_ns = statistics.fmean(ns_op)
    buckets, symbols = {}, {}
    for e in entries:
        a = e["attribution"]
        for b, n in a.get("bucket_samples", {}).items():
            buckets[b] = buckets.get(b, 0) + n
        for s in a.get("top_symbols", []):
            symbols[s["symbol"]] = symbols.get(s["symbol"], 0) + s["samples"]
    return {
        "blocked": _blocked(entries, mean_ns),
        "ns_per_op": mean_ns,
        "ns_per_op_each": ns_op,
        "items_per_second": [e["items_per_second"] for e in entries],
        "samples": samples,
        "buckets": {b: mean_ns * n / samples for b, n in buckets.items()},
        "symbols": {s: mean_ns * n / samples for s, n in symbols.items()},
    }


def _blocked(entries, ns_per_op):
    """--waits runs: off-CPU time per op by bucket (and "preempted"), from the time
    decomposition of the measured workers' roles: each bucket's share of their
    wall time times the time per op. {} without a decomposition."""
    blocked, wall = {}, 0.0
    for e in entries:
        td = e.get("time_decomposition")
        if not isinstance(td, dict) or not isinstance(td.get("roles"), dict):
            continue
        measured = {w.get("role") for w in e.get("workers", []) if w.get("measured", True)}
        for role, r in td["roles"].items():
            if role not in measured or not isinstance(r, dict) or not r.get("wall_s"):
                continue
            wall += r["wall_s"]
            for b, sec in (r.get("blocked_s") or {}).items():
                blocked[b] = blocked.get(b, 0.0) + sec
            # Runnable but not running (another task had the CPU): off CPU too.
            if r.get("preempted_s"):
                blocked["preempted"] = blocked.get("preempted", 0.0) + r["preempted_s"]
    if not wall:
        return {}
    return {b: ns_per_op * sec / wall for b, sec in blocked.items()}


def differs(a, b, threshold=0.05):
    """(bool, why): do two profiles' throughputs differ? More than `threshold`
    apart in mean time per op and, with two or more repetitions a side, with
    no overlap between the sides' ranges."""
    ta, tb = a["ns_per_op_each"], b["ns_per_op_each"]
    change = b["ns_per_op"] / a["ns_per_op"] - 1
    if abs(change) <= threshold:
        return False, f"time per op {change:+.1%}, within ±{threshold:.0%}"
    if len(ta) >= 2 and len(tb) >= 2:
        if max(ta) >= min(tb) and max(tb) >= min(ta):
            return False, (f"time per op {change:+.1%}, but the repetitions' ranges overlap "
                           f"({min(ta):.0f}–{max(ta):.0f} and {min(tb):.0f}–{max(tb):.0f} ns)")
        return True, f"time per op {change:+.1%}, the repetitions' ranges apart"
    return True, f"time per op {change:+.1%} (one repetition a side: not tested for overlap)"


def diff(a, b, top=8):
    """Rows (name, a_ns, b_ns, delta_ns) for buckets and for the symbols that
    moved most; a symbol outside one side's top list is None there."""
    names = sorted(set(a["buckets"]) | set(b["buckets"]))
    buckets = [(n, a["buckets"].get(n, 0.0), b["buckets"].get(n, 0.0),
                b["buckets"].get(n, 0.0) - a["buckets"].get(n, 0.0)) for n in names]
    buckets.sort(key=lambda r: -abs(r[3]))
    syms = []
    for s in set(a["symbols"]) | set(b["symbols"]):
        va, vb = a["symbols"].get(s), b["symbols"].get(s)
        syms.append((s, va, vb, (vb or 0.0) - (va or 0.0)))
    syms.sort(key=lambda r: -abs(r[3]))
    blocked = []
    for n in sorted(set(a.get("blocked", {})) | set(b.get("blocked", {}))):
        x, y = a.get("blocked", {}).get(n), b.get("blocked", {}).get(n)
        blocked.append((n, x, y, (y or 0.0) - (x or 0.0)))
    blocked.sort(key=lambda r: -abs(r[3]))
    return {"total": (a["ns_per_op"], b["ns_per_op"], b["ns_per_op"] - a["ns_per_op"]),
            "buckets": buckets, "symbols": syms[:top], "blocked": blocked}


def _ns(v):
    return "—" if v is None else f"{v:,.0f}"


def markdown(point, label_a, label_b, a, b, emulated=False, why=""):
    from .tables import pipe_table  # here, as in report_tables: keep the module light
    d = diff(a, b)
    ta, tb, dt = d["total"]
    out = [f"### {point}: {label_a} → {label_b}", "",
           f"Time per operation {ta:,.0f} → {tb:,.0f} ns ({dt:+,.0f} ns, {tb / ta - 1:+.1%}); {why}.",
           ""]
    if emulated:
        out += [f"Note: {EMULATED_NOTE}.", ""]
    align = ["left", "right", "right", "right"]

    def table(first, rows):
        return pipe_table([first, f"{label_a} ns/op", f"{label_b} ns/op", "change"],
                          [[n, _ns(x), _ns(y), f"{z:+,.0f}"] for n, x, y, z in rows], align)

    out += [table("bucket", d["buckets"]), ""]
    out += [table("symbol (top moves)", d["symbols"])]
    out += ["", "(— : not among that side's top symbols; its time is in its bucket above.)", ""]
    if d["blocked"]:
        out += [table("blocked, off CPU (--waits)", d["blocked"])]
        out += ["", "(— : that side ran without --waits.)", ""]
    return "\n".join(out)


def _points(doc):
    per = {}
    for b in doc.get("benchmarks", []):
        if b.get("run_type") == "iteration" and "skipped" not in b:
            per.setdefault(b.get("run_name") or b.get("name"), []).append(b)
    return per


def _emulated(doc):
    return bool(doc.get("context", {}).get("kernel", {}).get("emulated"))


def merged(results):
    """One document from several invocation files (load.ResultFile): their
    benchmarks pooled, the first one's context."""
    results = list(results)
    if not results:
        return {"benchmarks": []}
    return {"context": results[0].raw.get("context", {}),
            "benchmarks": [b for r in results for b in r.raw.get("benchmarks", [])]}


def section(sides, threshold=0.05, title="Why the kernels differ"):
    """Markdown for a list of (label, result document): every point with
    attribution on the first side and another, whose throughput differs, is
    decomposed against the first side. "" when no point has attribution on
    two sides."""
    if len(sides) < 2:
        return ""
    base_label, base_doc = sides[0]
    base = _points(base_doc)
    parts, same, had = [], [], False
    for label, doc in sides[1:]:
        other = _points(doc)
        for point, entries in base.items():
            a, b = point_profile(entries), point_profile(other.get(point, []))
            if not a or not b:
                continue
            had = True
            yes, why = differs(a, b, threshold)
            if yes:
                parts.append(markdown(point, base_label, label, a, b,
                                      _emulated(base_doc) or _emulated(doc), why))
            else:
                same.append(f"- {point}, {base_label} → {label}: no difference to explain ({why})")
    if not had:
        return ""
    text = [f"## {title} (attribution, ns per operation)", ""]
    text += parts
    if same:
        text += same + [""]
    return "\n".join(text)


def report_tables(results, threshold=0.05):
    """tables.Table list for the HTML report and its summary.md: when the
    result files (load.ResultFile) come from two or more kernels, the first
    kernel (in file order) against each other one, for every point that
    differs, by bucket and by the symbols that moved most."""
    from . import tables  # here: tables imports nothing of ours, but keep the module light
    by_kernel = {}
    for r in results:
        by_kernel.setdefault(r.kernel_release or "unknown", []).append(r)
    if len(by_kernel) < 2:
        return []
    kernels = list(by_kernel)
    base = merged(by_kernel[kernels[0]])
    out = []
    for k in kernels[1:]:
        other = merged(by_kernel[k])
        for point, entries in _points(base).items():
            a, b = point_profile(entries), point_profile(_points(other).get(point, []))
            if not a or not b:
                continue
            yes, why = differs(a, b, threshold)
            if not yes:
                continue
            d = diff(a, b)
            rows = [[f"bucket {n}", _ns(x), _ns(y), f"{z:+,.0f}"] for n, x, y, z in d["buckets"] if x or y]
            rows += [[f"symbol {n}", _ns(x), _ns(y), f"{z:+,.0f}"] for n, x, y, z in d["symbols"]]
            rows += [[f"blocked {n}", _ns(x), _ns(y), f"{z:+,.0f}"] for n, x, y, z in d["blocked"]]
            ta, tb, dt = d["total"]
            note = f"Time per operation {ta:,.0f} → {tb:,.0f} ns ({dt:+,.0f}); {why}."
            if _emulated(base) or _emulated(other):
                note += f" Note: {EMULATED_NOTE}."
            out.append(tables.Table(f"Why the kernels differ: {point}, {kernels[0]} → {k}",
                                    ["bucket / symbol", f"{kernels[0]} ns/op", f"{k} ns/op", "change"],
                                    rows, note=note))
    return out
