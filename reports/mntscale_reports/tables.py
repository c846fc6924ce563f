"""Report tables as plain data (headers + rows of strings), rendered by html.py and summary.py.

Building rows once and rendering twice keeps the HTML and summary.md consistent.
"""

from dataclasses import dataclass

from tabulate import tabulate

from . import usl as usl_mod
from .plots import latency_of, sys_share
from .stats import summarize


@dataclass
class Table:
    title: str
    headers: list
    rows: list
    note: str = ""


def rate(v):
    """Throughput with an SI prefix: 2.46 M/s."""
    if v is None:
        return "—"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}/s"
    return f"{v:.3g} /s"


def num(v, spec=".3g"):
    return "—" if v is None else format(v, spec)


def _group_cells(g):
    return [g.scenario, g.kernel, g.system, g.placement, g.profile]


GROUP_HEADERS = ["scenario", "kernel", "machine (CPU)", "placement", "profile"]


def context_table(results):
    rows = []
    for r in results:
        c = r.context
        topo = c.get("topology", {})
        profile = c.get("profile", {})
        mounts = c.get("mounts", {})
        rows.append([
            r.path, "yes" if r.complete else f"NO ({r.raw.get('incomplete_reason', '?')})",
            r.kernel_label, str(c.get("kernel", {}).get("accelerator", "?")), r.machine_name, r.cpu_model,
            f"{topo.get('packages', '?')} pkg / {topo.get('numa_nodes', '?')} NUMA / "
            f"{topo.get('cores', '?')} cores / {topo.get('pus', '?')} PUs ({topo.get('source', '?')})",
            str(c.get("placement", "?")), str(c.get("worker_mode", "?")),
            f"{profile.get('name', '?')} (layers {profile.get('layers', '?')}, binds {profile.get('binds', '?')})",
            f"{c.get('mount_hash', {}).get('entries', '?')} ({c.get('mount_hash', {}).get('source', '?')})",
            f"{mounts.get('before', '?')} → {mounts.get('after', '?')}",
            str(c.get("mntscale_version", "?")), str(c.get("date", "?")),
        ])
    return Table("Result files", ["file", "complete", "kernel", "accelerator", "machine", "CPU", "topology",
                                  "placement", "worker mode", "profile", "mount hash", "mounts", "version", "date"],
                 rows)


def counters_text(point):
    """Counters of a point; an unreadable one shows its reason, never a number."""
    seen = {}
    for counters in point.with_key("counters"):
        for name, c in counters.items():
            if "unsupported" in c:
                seen.setdefault(name, f"{name}: unsupported: {c['unsupported']}")
            elif "value" in c:
                seen[name] = f"{name}={c['value']:.3g}"
    return "; ".join(seen.values()) or "—"


def points_table(points):
    rows = []
    for p in sorted(points, key=lambda p: (_group_cells(p.group), p.run_name)):
        tput = summarize([p], "items_per_second")
        share = summarize([p], sys_share)
        lat = [summarize([p], latency_of(q)) for q in ("p50", "p99")]
        noisy = sum(1 for r in p.reps if isinstance(r, dict) and r.get("noisy"))
        rows.append(_group_cells(p.group)[:3] + [
            p.run_name + (f" ⚠ noisy in {noisy}/{len(p.reps)}" if noisy else ""), str(len(p.reps)),
            f"{rate(tput.mean)} ± {rate(tput.err)} ({tput.source})",
            rate(summarize([p], "ops_per_sec_per_worker").mean if p.values("ops_per_sec_per_worker") else None),
            f"{100 * share.mean:.0f}%" if share else "—",
            " / ".join(f"{s.mean:.0f} ns" if s else "—" for s in lat),
            counters_text(p),
        ])
    return Table("Measured points", ["scenario", "kernel", "machine (CPU)", "run", "reps", "throughput (± spread)",
                                     "per worker", "sys share", "p50 / p99", "counters"], rows,
                 note="Spread is the std over repetitions; with one repetition, the spread of its windows. "
                      "⚠ noisy: repetitions measured while other tasks used the worker CPUs (their "
                      "throughput is the machine's, not the kernel's; rerun on a quiet machine).")


def skipped_table(skips):
    return Table("Skipped points", ["file", "point", "repetition", "reason"],
                 [[s.path, s.name, str(s.repetition_index), s.reason] for s in skips],
                 note="Points that could not run. They are not plotted (never as 0).")


def usl_table(fits):
    rows = []
    for f in fits:
        s = f.sweep
        head = _group_cells(s.group) + [s.x_param, s.fixed_text]
        if f.fit is None:
            rows.append(head + ["—", "—", "—", "—", "—", f.error if f.flat else f"no fit: {f.error}"])
            continue
        m = f.fit
        peak = f.peak_text()
        note = f"{m.n_points} points" + (": exactly determined, R² says nothing" if m.n_points == 3 else "")
        rows.append(head + [rate(m.lam), num(m.sigma, ".4f"), num(m.kappa, ".3g"), num(m.r2, ".4f"), peak, note])
    return Table("USL fits", GROUP_HEADERS + ["N", "held fixed", "λ", "σ", "κ", "R²", "peak N*", "note"], rows,
                 note="X(N) = λN / (1 + σ(N−1) + κN(N−1)), least squares on the mean per N, σ, κ ≥ 0. "
                      "N* = sqrt((1−σ)/κ), at least 1; 'no peak' when κ ≈ 0; never shown beyond "
                      f"{usl_mod.MAX_EXTRAPOLATION:g}× the largest measured N. A sweep flat within noise gets "
                      "no fit.")


def density_table(rows):
    out = []
    for row in rows:
        s = row.sweep
        params = dict(s.fixed)
        answers = [row.answers[t].text() for t in usl_mod.DENSITY_THRESHOLDS]
        out.append(_group_cells(s.group) + [str(params.get("layers", "?")), str(params.get("binds", "?")),
                                            s.fixed_text, f"{rate(row.baseline)} ({row.baseline_source})"
                                            if row.baseline else "—"] + answers)
    return Table("Container density", GROUP_HEADERS + ["layers", "binds", "held fixed", "1-container throughput"]
                 + [f"below {t}% above N =" for t in usl_mod.DENSITY_THRESHOLDS], out,
                 note="Throughput at N containers relative to one container (aggregate items_per_second). "
                      "'measured' interpolates linearly between measured points; 'model' extrapolates the "
                      "USL fit beyond the largest measured N, only when the fit's R² is at least "
                      f"{usl_mod.MIN_EXTRAPOLATION_R2:g} and never beyond {usl_mod.MAX_EXTRAPOLATION:g}× "
                      "the largest measured N.")


def rejected_table(errors):
    return Table("Rejected files", ["file", "reason"], [[e.path, e.reason] for e in errors])


def md_cell(v):
    """One Markdown table cell: pipes escaped, newlines flattened."""
    return str(v).replace("|", "\\|").replace("\n", " ")


def pipe_table(headers, rows, align=None):
    """A GitHub-flavoured Markdown table (tabulate's "pipe" format) of strings, as given.

    align: per column "left" or "right" (default left). Cells are escaped (md_cell) and never
    parsed as numbers, so "1,234" or "007" stay as they are.
    """
    return tabulate([[md_cell(c) for c in r] for r in rows], headers=[md_cell(h) for h in headers],
                    tablefmt="pipe", colalign=align, disable_numparse=True)


def markdown(table):
    """GitHub-flavoured Markdown for one table (pipes escaped)."""
    lines = [f"### {table.title}", ""]
    if not table.rows:
        return "\n".join(lines + ["(none)", ""])
    lines.append(pipe_table(table.headers, table.rows))
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines + [""])
