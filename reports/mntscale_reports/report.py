"""The `report` subcommand: result files in, plots + index.html + summary.md out.

build() computes the model once (model.py: points, sweeps per axis, USL fits, density,
claims, findings) and draws the plots from it; the tables, summary.md and index.html
below only render that model.
"""

import os
from dataclasses import dataclass

from . import attribution_diff
from . import claims as claims_mod
from . import findings as findings_mod
from . import html, load, plots, stats, tables, waits
from . import model as model_mod


@dataclass
class Report:
    """The model and what was drawn from it, shared by the HTML page and summary.md."""

    model: model_mod.ReportModel
    errors: list
    plots: list

    results = property(lambda self: self.model.results)
    points = property(lambda self: self.model.points)
    fits = property(lambda self: self.model.fits)
    density = property(lambda self: self.model.density)
    claims = property(lambda self: self.model.claims)  # claims.ClaimResult, None without a scenario list
    findings = property(lambda self: self.model.findings)  # findings.Finding, in reading order

    def intro(self):
        skipped = sum(len(r.skipped) for r in self.results)
        drawn = sum(1 for p in self.plots if p.files)
        incomplete = sum(1 for r in self.results if not r.complete)
        points = self.points
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
    model = model_mod.build(results, scenarios, list_error)
    return Report(model, errors, render_plots(model, outdir))


def render_plots(model, outdir):
    """The report's figures, drawn from the model's points and sweeps."""
    points = model.points
    return (plots.render_all(points, outdir, model.sweeps) + waits.decomposition_plots(points, outdir)
            + waits.storm_wait_plot(points, outdir))


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
             tables.skipped_table(load.all_skips(rep.results)), tables.points_table(rep.points)]
    after += waits.tables(rep.points)
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
