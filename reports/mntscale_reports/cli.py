"""Command line: `report`, `compare`, `ab`, `usl` and `machines` subcommands (see docs/reports.md).

Exit codes: 0 fine, 1 compare found a regression beyond --threshold, 2 bad input,
3 compare decided no point at all (every point inconclusive: "NO VERDICT", not a pass).
qualify: 0 qualified, 1 not qualified, 2 bad input, 3 inconclusive (see qualify.py).
"""

import argparse
import json
import math
import os
import sys

from . import (adaptive, attribution_diff, capacity, claims, compare, load, machines, qualify, report,
               tables, usl)
from . import outputs as outputs_mod

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_UNDECIDED = 0, 1, 2, 3


def _load(paths):
    """Load files, print each rejection (naming the file) to stderr, return loaded results."""
    results, errors = load.load_many(paths)
    for e in errors:
        print(f"mntscale_report: rejected {e}", file=sys.stderr)
    return results, errors


def _check_outputs(outputs):
    """Print and count unusable outputs, given as (option, path, kind[, files]); True when all are usable."""
    return outputs_mod.check_outputs(outputs, sys.stderr)


def _check_inputs(paths):
    """Refuse a file named twice (directly or through a directory): its points would count twice."""
    twice = load.duplicates(paths)
    for path in twice:
        print(f"mntscale_report: {path!r} is given more than once", file=sys.stderr)
    return not twice


def cmd_report(args):
    if not _check_inputs(args.inputs):
        return EXIT_BAD_INPUT
    results, errors = _load(args.inputs)
    if not results:
        print("mntscale_report: no result file could be loaded", file=sys.stderr)
        return EXIT_BAD_INPUT
    scenarios, list_error = None, None
    if args.list or args.mntscale:
        try:
            scenarios = claims.obtain_list(args.list, args.mntscale)
        except claims.ListError as e:
            list_error = str(e).splitlines()[0]
            print(f"mntscale_report: expectations not checked: {e}", file=sys.stderr)
    os.makedirs(args.outdir, exist_ok=True)
    rep = report.build(results, errors, args.outdir, scenarios, list_error)
    report.write(rep, args.outdir)
    print(f"wrote {os.path.join(args.outdir, 'index.html')}: {rep.intro()}")
    return EXIT_OK


def _write(path, text):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def cmd_compare(args):
    if not _check_inputs([args.a]) or not _check_inputs([args.b]):
        return EXIT_BAD_INPUT
    side = {}
    for name, path in (("A", args.a), ("B", args.b)):
        side[name], _ = _load([path])
        if not side[name]:
            print(f"mntscale_report: {name} ({path}): no result file could be loaded", file=sys.stderr)
            return EXIT_BAD_INPUT
    opts = compare.Options(alpha=args.alpha, threshold=args.threshold, min_invocations=args.min_invocations,
                           max_cv=args.max_cv / 100.0, min_effect=args.min_effect, equivalence=args.equivalence,
                           keep_noisy=args.keep_noisy)
    result = compare.compare_results(side["A"], side["B"], opts)
    if not result.points:
        print("mntscale_report: A and B have no point in common (same run_name and params)", file=sys.stderr)
        return EXIT_BAD_INPUT
    doc = compare.to_json(result, [r.path for r in side["A"]], [r.path for r in side["B"]])
    full = compare.to_markdown(result)
    why = attribution_diff.section([("A", attribution_diff.merged(side["A"])),
                                    ("B", attribution_diff.merged(side["B"]))],
                                   threshold=args.threshold / 100.0, title="Why A and B differ")
    if why:
        full += "\n" + why
    if args.out:
        _write(os.path.join(args.out, "compare.json"), json.dumps(doc, indent=1) + "\n")
        _write(os.path.join(args.out, "compare.md"), full)
        _write(os.path.join(args.out, "summary.md"), compare.to_markdown(result, only_changes=True))
    if args.json:
        _write(args.json, json.dumps(doc, indent=1) + "\n")
    print(full)
    if result.gate_failures:
        return EXIT_REGRESSION
    return EXIT_UNDECIDED if result.undecided else EXIT_OK


def cmd_usl(args):
    if not _check_inputs(args.inputs):
        return EXIT_BAD_INPUT
    results, _ = _load(args.inputs)
    if not results:
        return EXIT_BAD_INPUT
    points = load.all_points(results)
    for x_param in ("workers", "containers"):
        print(tables.markdown(tables.usl_table(usl.fit_points(points, x_param))))
    return EXIT_OK


def cmd_machines(args):
    try:
        found, errors = machines.load_machines(args.dirs)
    except machines.MachinesError as e:
        print(f"mntscale_report: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for e in errors:
        print(f"mntscale_report: rejected {e}", file=sys.stderr)
    rep = machines.build(found, errors)
    warnings = [w for m in found for w in m.warnings]
    for w in warnings:
        print(f"mntscale_report: warning: {w}", file=sys.stderr)
    rep.findings[:0] = [f"⚠ {w}" for w in warnings]
    if args.out:
        machines.write(rep, args.out)
        print(f"wrote {os.path.join(args.out, 'index.html')}")
    print(machines.to_markdown(rep))
    return EXIT_OK


_number = outputs_mod.number
POSITIVE = outputs_mod.POSITIVE


def parser():
    p = argparse.ArgumentParser(prog="mntscale_report.py", description="Plots, comparisons and models "
                                "for mntscale result files.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="plots, index.html and summary.md from result files")
    r.add_argument("outdir")
    r.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    r.add_argument("--list", help="`mntscale list --json` output: adds the facts table (expectations checked)")
    r.add_argument("--mntscale", help="binary to run `list --json` with, instead of --list")
    r.set_defaults(func=cmd_report, outputs=[("OUTDIR", "outdir", "directory", ("index.html", "summary.md"))])
    c = sub.add_parser("compare", help="A/B comparison of throughput with a verdict per point")
    c.add_argument("a", metavar="A",
                   help="baseline: a result file, or a directory of them (one file per invocation)")
    c.add_argument("b", metavar="B",
                   help="candidate: a result file, or a directory of them (one file per invocation)")
    c.add_argument("--out", help="directory for compare.json, compare.md and summary.md")
    c.add_argument("--json", help="also write the machine-readable result here")
    c.add_argument("--threshold", type=POSITIVE, default=5.0, help="percent drop that fails (exit 1), default 5")
    c.add_argument("--min-invocations", type=_number(1, math.inf, low_open=False, integer=True), default=4,
                   help="independent invocations (result files, or invocations in a nightly file) needed per "
                        "side for a verdict, default 4; repetitions of one invocation are not independent")
    c.add_argument("--equivalence", type=POSITIVE, default=None,
                   help="percent; 'no change' needs the CI inside ± this, default the --threshold")
    c.add_argument("--alpha", type=_number(0, 1), default=0.05, help="significance level, default 0.05")
    c.add_argument("--max-cv", type=POSITIVE, default=10.0,
                   help="percent CV of the invocation means at or above which 'no change' becomes "
                        "'inconclusive', default 10")
    c.add_argument("--min-effect", type=_number(0, math.inf, low_open=False), default=1.0,
                   help="percent change below which a significant change is not called worse/better, default 1")
    c.add_argument("--keep-noisy", action="store_true", help="count invocations flagged noisy as evidence (only for a deliberate perturbation outside mntscale, as the tests' mount_lock writers; never for a verdict on a shared machine)")
    c.set_defaults(func=cmd_compare, outputs=[("--out", "out", "directory", ("compare.json", "compare.md", "summary.md")),
                                              ("--json", "json", "file")])
    u = sub.add_parser("usl", help="print USL fits along workers and containers")
    u.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    u.set_defaults(func=cmd_usl)
    m = sub.add_parser("machines", help="compare machines: one directory of invocation files per machine")
    m.add_argument("dirs", nargs="+", metavar="DIR",
                   help="one directory of result files (one per invocation) per machine; the first is the reference")
    m.add_argument("--out", help="directory for index.html, summary.md, machines.json and the plots")
    m.set_defaults(func=cmd_machines, outputs=[("--out", "out", "directory",
                                                ("index.html", "summary.md", "machines.json"))])
    qualify.add_parsers(sub)
    adaptive.add_parser(sub)
    capacity.add_parser(sub, _check_outputs)
    sub.choices["capacity"].set_defaults(outputs=[("--out", "out", "directory", ("index.html", "summary.md"))])
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    # One output check for every command, before any input is read: (option, attribute, kind, files).
    outputs = [(option, getattr(args, attr), kind, *files) for option, attr, kind, *files in getattr(args, "outputs", [])]
    if not _check_outputs(outputs):
        return EXIT_BAD_INPUT
    return args.func(args)
