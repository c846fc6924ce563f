"""The report's model: everything the `report` subcommand says, computed once.

Data flow (one direction, each step once)::

    results (load.load_many)
      -> points            load.all_points(results)
      -> sweeps per axis   sweeps.build(points, axis) for axis in AXES, one call per axis
      -> USL fits          usl.fit_sweeps(sweeps[axis]) for workers, then containers
      -> density rows      usl.density_row(fit) for each containers fit
      -> claim results     claims.evaluate(results, ...) when a scenario list was given
      -> findings          findings.compute(points, claims, why, sweeps=sweeps)

Renderers take this model and never rebuild any of it from the points: report.py turns it
into tables, summary.md and index.html; plots.render_all draws from ``model.sweeps``;
findings.markdown writes ``model.findings``. A test (test_model.py) counts sweeps.build
calls during one report so a consumer that slices the points again is caught.
"""

from dataclasses import dataclass, field

from . import claims as claims_mod
from . import findings as findings_mod
from . import load, usl
from . import sweeps as sweeps_mod

# The axes the report sweeps along; "workers" first: the USL table lists worker fits first.
AXES = ("workers", "containers")


@dataclass
class ReportModel:
    results: list  # load.Result, as loaded
    points: list  # load.Point of all results
    sweeps: dict = field(default_factory=dict)  # axis -> [sweeps.Sweep] (sweeps.build order)
    fits: list = field(default_factory=list)  # usl.SweepFit: workers sweeps, then containers sweeps
    density: list = field(default_factory=list)  # usl.DensityRow, one per containers fit
    claims: list = None  # claims.ClaimResult, None when no scenario list was given
    findings: list = field(default_factory=list)  # findings.Finding, in reading order


def build(results, scenarios=None, list_error=None):
    """The ReportModel of ``results``. ``scenarios``: the parsed `mntscale list --json`
    (claims.obtain_list) or None; ``list_error``: why the list could not be had."""
    points = load.all_points(results)
    sweeps = sweeps_mod.build_axes(points, AXES)
    fits = [f for axis in AXES for f in usl.fit_sweeps(sweeps[axis])]
    density = [usl.density_row(f) for f in fits if f.sweep.x_param == "containers"]
    claim_results = None
    if scenarios is not None:
        claim_results = claims_mod.evaluate(results, claims_mod.relevant(scenarios, results))
    found = findings_mod.compute(points, claim_results, list_error, sweeps=sweeps)
    return ReportModel(results, points, sweeps, fits, density, claim_results, found)
