"""The `report` subcommand: result files in, plots + index.html + summary.md out."""

import os
from dataclasses import dataclass

from . import attribution_diff
from . import claims as claims_mod
from . import findings as findings_mod
from . import html, load, plots, stats, tables, usl, waits


@dataclass
class Report:
    """Everything derived from the loaded files, shared by the HTML page and summary.md."""

    results: list
    errors: list
    plots: list
    fits: list
    density: list
    claims: list = None  # claims.ClaimResult, None when no scenario list was given
    findings: list = None  # findings.Finding, in reading order

    def intro(self):
        skipped = sum(len(r.skipped) for r in self.results)
        drawn = sum(1 for p in self.plots if p.files)
        incomplete = sum(1 for r in self.results if not r.complete)
        points = load.all_points(self.results)
        noisy, reps = findings_mod.noisy_share(points)
        share = f" ({100 * noisy / reps:.0f}%)" if reps else ""
        reached = stats.resolution_text(points)
        return (f"{len(self.results)} result file(s) loaded ({incomplete} incomplete), {len(self.errors)} rejected; "
                f"{len(points)} measured point(s), {skipped} skipped point(s); "
                f"{drawn} plot(s). Resolution: {reached or 'no interval (one repetition per point)'}. "
                f"Noise: {noisy} of {reps} repetitions{share} measured on a busy machine (flagged noisy); "
                f"a finding from points at least {findings_mod.NOISY_WITHHOLD:.0%} noisy is withheld.")


def build(results, errors, outdir, scenarios=None, list_error=None):
    """``scenarios``: the parsed `mntscale list --json` (claims.obtain_list), or None: no facts table
    (``list_error``: why the list could not be had)."""
    points = load.all_points(results)
    fits = usl.fit_points(points, "workers") + usl.fit_points(points, "containers")
    container_fits = [f for f in fits if f.sweep.x_param == "containers"]
    claim_results = None
    if scenarios is not None:
        claim_results = claims_mod.evaluate(results, claims_mod.relevant(scenarios, results))
    return Report(results, errors, plots.render_all(points, outdir) + waits.decomposition_plots(points, outdir) + waits.storm_wait_plot(points, outdir), fits,
                  [usl.density_row(f) for f in container_fits], claim_results,
                  findings_mod.compute(points, claim_results, list_error))


def facts_table(rep):
    return tables.Table("Facts: expectations checked", claims_mod.FACTS_HEADERS, claims_mod.facts_rows(rep.claims),
                        note="Each scenario's claims (mntscale list) evaluated on these results: holds, deviates "
                             "(with the numbers), or not tested (with why).")


def _tables(rep):
    """(before plots, after plots): context first, detail tables at the end."""
    before = [tables.context_table(rep.results)]
    if rep.claims is not None:
        before.insert(0, facts_table(rep))
    if rep.errors:
        before.insert(0, tables.rejected_table(rep.errors))
    after = [tables.usl_table(rep.fits), tables.density_table(rep.density),
             tables.skipped_table(load.all_skips(rep.results)), tables.points_table(load.all_points(rep.results))]
    after += waits.tables(load.all_points(rep.results))
    after += attribution_diff.report_tables(rep.results)
    return before, after


def summary_markdown(rep):
    """Short Markdown for a CI comment: no per-point table, but fits, density and skips."""
    lines = ["# mntscale report", "", rep.intro(), "", findings_mod.markdown(rep.findings or [])]
    skipped_plots = [p for p in rep.plots if p.skipped]
    if skipped_plots:
        lines += ["Plots skipped: " + "; ".join(f"{p.title} ({p.skipped})" for p in skipped_plots), ""]
    parts = ([facts_table(rep)] if rep.claims is not None else []) + [
             tables.usl_table(rep.fits), tables.density_table(rep.density),
             tables.skipped_table(load.all_skips(rep.results))]
    parts += attribution_diff.report_tables(rep.results)
    if rep.errors:
        parts.append(tables.rejected_table(rep.errors))
    return "\n".join(lines) + "\n" + "\n".join(tables.markdown(t) for t in parts)


def write(rep, outdir):
    before, after = _tables(rep)
    with open(os.path.join(outdir, "index.html"), "w", encoding="utf-8") as f:
        f.write(html.page("mntscale report", rep.intro(), before, rep.plots, after,
                          findings=[x.text for x in rep.findings or []]))
    with open(os.path.join(outdir, "summary.md"), "w", encoding="utf-8") as f:
        f.write(summary_markdown(rep))
