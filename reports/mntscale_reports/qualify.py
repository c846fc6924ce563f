"""Kernel qualification: a candidate's invocations against a reference's, plus its facts.

    mntscale_report.py qualify CANDIDATE --reference REFERENCE [--list LIST.json | --mntscale BIN]

Each side is a directory (or file) of invocations of the same preset. Per point, the A/B
verdict of compare.py (reference = A, candidate = B, invocation means as samples); on the
candidate, every claim of `mntscale list --json` (claims.py). One verdict:

| verdict | exit | when |
|---|---|---|
| qualified | 0 | no point worse beyond the gate, no fact deviates, every point decided |
| not qualified | 1 | a point is worse by at least the gate threshold, or a fact deviates |
| (bad input) | 2 | a side has no loadable file, no point in common, no scenario list |
| inconclusive | 3 | nothing failed, but some point got no verdict: the output names the points |
|              |   | and the invocations per side needed |

Also the `claims` subcommand (claims on any result files).
"""

import json
import math
import os
import sys
from dataclasses import dataclass, field

from . import claims as claims_mod
from . import attribution_diff, compare, load, outputs

QUALIFIED, NOT_QUALIFIED, INCONCLUSIVE = "qualified", "not qualified", "inconclusive"
EXIT_QUALIFIED, EXIT_NOT_QUALIFIED, EXIT_BAD_INPUT, EXIT_INCONCLUSIVE = 0, 1, 2, 3
EXIT_CODES = {QUALIFIED: EXIT_QUALIFIED, NOT_QUALIFIED: EXIT_NOT_QUALIFIED, INCONCLUSIVE: EXIT_INCONCLUSIVE}
MAX_SUGGESTED_INVOCATIONS = 100  # beyond this, more invocations are not the answer: a quieter machine is


@dataclass
class Qualification:
    verdict: str
    comparison: object  # compare.Comparison
    facts: list  # claims.ClaimResult on the candidate
    reference_facts: list
    reasons: list = field(default_factory=list)  # sentences behind the verdict
    rerun: dict = field(default_factory=dict)  # run_name -> invocations per side needed
    preset: str = None

    @property
    def exit_code(self):
        return EXIT_CODES[self.verdict]


def invocations_needed(p, opts):
    """Invocations per side that would let an inconclusive point get a verdict (an estimate).

    Too few: the minimum. A CI too wide for the margin: its half-width shrinks as 1/sqrt(n).
    Too noisy (CV at or over --max-cv): more invocations do not lower the CV; None.
    """
    n = min(p.n_a, p.n_b)
    if n < opts.min_invocations:
        return opts.min_invocations
    if p.ci_low is None:
        return None
    if max(p.cv_a, p.cv_b) >= opts.max_cv:
        return None
    half = (p.ci_high - p.ci_low) / 2.0
    reach = max(abs(p.ci_low), abs(p.ci_high))
    if reach < opts.margin or half <= 0:
        return n
    # the CI must shrink until it ends inside the margin around the measured change
    room = opts.margin - abs(p.change_pct or 0.0)
    if room <= 0:
        return None
    return max(n + 1, math.ceil(n * (half / room) ** 2))


def _preset(results):
    for r in results:
        preset = (r.context.get("config") or {}).get("preset")
        if isinstance(preset, dict):  # {"id": "nightly-v2", ...} as mntscale records it
            preset = preset.get("id")
        if preset:
            return str(preset)
    return None


def qualify(reference, candidate, scenarios, opts):
    """Results of both sides and the scenario list (or None: facts not checked) -> Qualification."""
    comparison = compare.compare_results(reference, candidate, opts)
    facts, ref_facts = [], []
    if scenarios is not None:
        facts = claims_mod.evaluate(candidate, claims_mod.relevant(scenarios, candidate))
        ref_facts = claims_mod.evaluate(reference, claims_mod.relevant(scenarios, reference))
    q = Qualification(INCONCLUSIVE, comparison, facts, ref_facts, preset=_preset(candidate) or _preset(reference))
    failing = comparison.gate_failures
    deviating = [f for f in facts if f.status == claims_mod.DEVIATES]
    for p in failing:
        q.reasons.append(f"`{p.run_name}` regressed {p.change_pct:+.1f}% (95% CI [{p.ci_low:+.1f}, "
                         f"{p.ci_high:+.1f}]%, q={p.q_value:.3g}), beyond the {opts.threshold:g}% gate")
    for f in deviating:
        also = [r for r in ref_facts if r.scenario == f.scenario and r.claim.get("id") == f.claim.get("id")
                and r.status == claims_mod.DEVIATES]
        q.reasons.append(f"fact deviates: {f.scenario}: {f.fact}: expected {f.expected}, measured {f.measured}"
                         + (" (the reference deviates too)" if also else ""))
    if failing or deviating:
        q.verdict = NOT_QUALIFIED
        return q
    undecided = [p for p in comparison.points if p.verdict == compare.INCONCLUSIVE]
    for p in undecided:
        q.rerun[p.run_name] = invocations_needed(p, opts)
        need = q.rerun[p.run_name]
        quiet = " quiet" if p.noisy_inv_a or p.noisy_inv_b else ""
        how = (f"needs about {need}{quiet} invocations per side (has {min(p.n_a, p.n_b)})"
               if need else "too noisy for more invocations to help: rerun on a quieter machine")
        q.reasons.append(f"`{p.run_name}` is inconclusive ({p.reason}); {how}")
    if undecided:
        q.verdict = INCONCLUSIVE
        return q
    q.verdict = QUALIFIED
    for p in comparison.points:
        if p.verdict == compare.WORSE:  # significant, but below the gate: said, not hidden
            q.reasons.append(f"`{p.run_name}` is worse by {p.change_pct:+.1f}% (95% CI [{p.ci_low:+.1f}, "
                             f"{p.ci_high:+.1f}]%), below the {opts.threshold:g}% gate")
    q.reasons.append(f"none of the {len(comparison.points)} points is worse beyond the {opts.threshold:g}% gate"
                     + (f"; {claims_mod.counts(facts)[claims_mod.HOLDS]} facts hold" if scenarios is not None
                        else "; facts not checked"))
    return q


def rerun_advice(q):
    """One instruction: how many more invocations of the preset, per side."""
    needs = [n for n in q.rerun.values() if n]
    if not needs:
        return None
    have = min(min(p.n_a, p.n_b) for p in q.comparison.points if p.run_name in q.rerun)
    total = min(max(needs), MAX_SUGGESTED_INVOCATIONS)
    what = f"the preset {q.preset}" if q.preset else "the same runs"
    quiet = " quiet" if q.comparison.noise()[0] else ""
    return (f"Rerun: run {what} on each side until each has {total}{quiet} invocations "
            f"({max(total - have, 1)} more per side, interleaved A B A B …), then qualify again.")


def headline(q, facts_checked=True):
    c = q.comparison.counts()
    f = claims_mod.counts(q.facts)
    facts = (f"facts {f[claims_mod.HOLDS]} hold, {f[claims_mod.DEVIATES]} deviate, {f[claims_mod.NOT_TESTED]} "
             "not tested") if facts_checked else "facts not checked"
    reached = compare.resolution_reached(q.comparison)
    return (f"**{q.verdict.upper()}** (exit {q.exit_code}): points {c[compare.WORSE]} worse, "
            f"{c[compare.BETTER]} better, {c[compare.NO_CHANGE]} no change, {c[compare.INCONCLUSIVE]} inconclusive; "
            + facts + f"; gate: {q.comparison.options.min_invocations} quiet invocations per side, "
            f"{compare.noise_text(q.comparison)}"
            + (f"; resolution {reached}" if reached else ""))


def to_markdown(q, facts_checked=True):
    lines = ["# mntscale qualify: candidate vs reference", "", headline(q, facts_checked), ""]
    lines += [f"- {r}" for r in q.reasons] + [""]
    advice = rerun_advice(q)
    if advice:
        lines += [advice, ""]
    body = compare.to_markdown(q.comparison).split("\n", 3)[-1]  # without its title and headline
    lines += ["## Points (A = reference, B = candidate)", "", body.strip(), ""]
    lines += ["## Facts on the candidate", ""]
    if facts_checked:
        lines.append(claims_mod.to_markdown(q.facts).split("\n", 2)[-1].strip())
    else:
        lines.append("Not checked: no scenario list (give --list or --mntscale).")
    return "\n".join(lines) + "\n"


def to_json(q):
    return {"schema": "mntscale-qualify", "schema_version": 1, "verdict": q.verdict, "exit_code": q.exit_code,
            "reasons": q.reasons, "rerun_invocations_per_side": q.rerun, "preset": q.preset,
            "compare": compare.to_json(q.comparison), "facts": claims_mod.to_json(q.facts),
            "reference_facts": claims_mod.to_json(q.reference_facts)}


# --- command line --------------------------------------------------------------------------

def _load_side(label, path, paths=None):
    results, errors = load.load_many(paths or [path])
    for e in errors:
        print(f"mntscale_report: rejected {e}", file=sys.stderr)
    if not results:
        print(f"mntscale_report: {label} ({path}): no result file could be loaded", file=sys.stderr)
    return results


def _machine_check(reference, candidate, cross_machine):
    """Refusals (exit 2) and warnings about which machines and kernels the sides ran on.

    A kernel is qualified on one machine: a side mixing machines is refused, and two sides on
    different machines need --cross-machine. A side mixing kernels is only warned about.
    """
    refusals, warnings, ran_on = [], [], {}
    for label, results in (("reference", reference), ("candidate", candidate)):
        names = load.mix(results, load.machine_name)
        if len(names) > 1:
            refusals.append(f"the {label} mixes results of {len(names)} machines: {load.describe_mix(names)}; "
                            "each side must be invocations on one machine")
        ran_on[label] = next(iter(names), None)
        kernels = load.mix(results, load.kernel_release)
        if len(kernels) > 1:
            warnings.append(f"the {label} mixes kernels: {load.describe_mix(kernels)}")
    a, b = ran_on["reference"], ran_on["candidate"]
    if not refusals and a and b and a != b:
        what = f"the reference ran on {a!r} and the candidate on {b!r}"
        if cross_machine:
            warnings.append(what + " (--cross-machine): a difference is the machines' as much as the kernels'")
        else:
            refusals.append(what + "; a kernel is qualified against a reference on the same machine "
                            "(pass --cross-machine to compare them anyway)")
    return refusals, warnings


def _scenarios(args):
    """The scenario list from --list / --mntscale; None with --no-facts; raises ListError."""
    if getattr(args, "no_facts", False):
        return None
    return claims_mod.obtain_list(args.list, args.mntscale)


def _write(path, text):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def cmd_claims(args):
    results = _load_side("input", " ".join(args.inputs), args.inputs)
    if not results:
        return EXIT_BAD_INPUT
    try:
        scenarios = _scenarios(args)
    except claims_mod.ListError as e:
        print(f"mntscale_report: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.all:
        scenarios = claims_mod.relevant(scenarios, results)
    evaluated = claims_mod.evaluate(results, scenarios)
    text = claims_mod.to_markdown(evaluated)
    if args.out:
        _write(os.path.join(args.out, "facts.md"), text)
        _write(os.path.join(args.out, "claims.json"), json.dumps(claims_mod.to_json(evaluated), indent=1) + "\n")
    print(text)
    return EXIT_NOT_QUALIFIED if any(r.status == claims_mod.DEVIATES for r in evaluated) else EXIT_QUALIFIED


def cmd_qualify(args):
    for name in ("threshold", "max_cv", "alpha"):
        if not getattr(args, name) > 0:
            print(f"mntscale_report: --{name.replace('_', '-')} {getattr(args, name)} must be > 0", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.min_invocations < 2:
        print(f"mntscale_report: --min-invocations {args.min_invocations} must be at least 2", file=sys.stderr)
        return EXIT_BAD_INPUT
    reference = _load_side("reference", args.reference)
    candidate = _load_side("candidate", args.candidate)
    if not reference or not candidate:
        return EXIT_BAD_INPUT
    refusals, warnings = _machine_check(reference, candidate, args.cross_machine)
    for r in refusals:
        print(f"mntscale_report: {r}", file=sys.stderr)
    if refusals:
        return EXIT_BAD_INPUT
    for w in warnings:
        print(f"mntscale_report: warning: {w}", file=sys.stderr)
    try:
        scenarios = _scenarios(args)
    except claims_mod.ListError as e:
        print(f"mntscale_report: {e} (give --list LIST.json, --mntscale BIN, or --no-facts)", file=sys.stderr)
        return EXIT_BAD_INPUT
    opts = compare.Options(alpha=args.alpha, threshold=args.threshold, min_invocations=args.min_invocations,
                           max_cv=args.max_cv / 100.0, equivalence=args.equivalence, keep_noisy=args.keep_noisy)
    q = qualify(reference, candidate, scenarios, opts)
    if not q.comparison.points:
        print("mntscale_report: reference and candidate have no point in common (same run_name and params)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    text = to_markdown(q, facts_checked=scenarios is not None)
    why = attribution_diff.section([("reference", attribution_diff.merged(reference)),
                                    ("candidate", attribution_diff.merged(candidate))],
                                   title="Why the candidate differs")
    if why:
        text += "\n" + why
    if args.out:
        _write(os.path.join(args.out, "qualify.md"), text)
        _write(os.path.join(args.out, "qualify.json"), json.dumps(to_json(q), indent=1) + "\n")
    print(text)
    return q.exit_code


def _list_options(p):
    p.add_argument("--list", help="output of `mntscale list --json` (default: run --mntscale)")
    p.add_argument("--mntscale", help="binary to run `list --json` with (default build/mntscale, else PATH)")


def add_parsers(sub):
    c = sub.add_parser("claims", help="evaluate every scenario's claims (expectations) on result files")
    c.add_argument("inputs", nargs="+", metavar="RESULT")
    _list_options(c)
    c.add_argument("--out", help="directory for facts.md and claims.json")
    c.add_argument("--all", action="store_true", help="also list claims of scenarios the results did not run")
    c.set_defaults(func=cmd_claims, outputs=[("--out", "out", "directory", ("facts.md", "claims.json"))])
    q = sub.add_parser("qualify", help="qualified / not qualified / inconclusive: candidate vs reference "
                                       "invocations plus the candidate's facts (exit 0 / 1 / 3, 2 bad input)")
    q.add_argument("candidate", metavar="CANDIDATE", help="directory (or file) of the candidate's invocations")
    q.add_argument("--reference", required=True, help="directory (or file) of the reference's invocations")
    _list_options(q)
    q.add_argument("--no-facts", action="store_true", help="A/B only, do not check the claims")
    q.add_argument("--out", help="directory for qualify.md and qualify.json")
    # The typed parsers refuse inf, nan and out-of-range values with exit 2 (issue 28).
    q.add_argument("--threshold", type=outputs.POSITIVE, default=5.0, help="percent drop that disqualifies, default 5")
    q.add_argument("--min-invocations", type=outputs.number(2, math.inf, low_open=False, integer=True), default=4,
                   help="invocations per side for a verdict, default 4")
    q.add_argument("--equivalence", type=outputs.POSITIVE, default=None,
                   help="percent; 'no change' needs the CI inside ± this, default the --threshold")
    q.add_argument("--alpha", type=outputs.number(0, 1), default=0.05, help="significance level, default 0.05")
    q.add_argument("--max-cv", type=outputs.POSITIVE, default=10.0, help="percent CV of invocation means, default 10")
    q.add_argument("--cross-machine", action="store_true",
                   help="the sides ran on different machines on purpose (otherwise refused: a kernel is "
                        "qualified on one machine)")
    q.add_argument("--keep-noisy", action="store_true", help="count invocations flagged noisy as evidence (only for a deliberate perturbation outside mntscale, as the tests' mount_lock writers; never for a verdict on a shared machine)")
    q.set_defaults(func=cmd_qualify, outputs=[("--out", "out", "directory", ("qualify.md", "qualify.json"))])
