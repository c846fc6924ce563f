"""Run until decided: an A/B loop that adds interleaved invocations until every point is decided.

    mntscale_report.py ab --a 'CMD' --b 'CMD' [--resolution 1] [--budget 300] [--out DIR]

The statistics are compare.py's, unchanged: the quiet invocation is the sample, Mann-Whitney
per point, Benjamini-Hochberg q over the points, a bootstrap CI, ``min_invocations`` quiet
invocations per side before any verdict, noisy invocations left out. What this adds:

- **Interleaving.** Invocations alternate A B, B A, A B … (ABBA): a slow drift of the machine
  then falls on both sides alike instead of on whichever ran last.
- **Looks.** The comparison is made at fixed numbers of pairs (LOOKS: 4, 6, 8, 12, 16, 24, …
  up to ``max_invocations``) and once more when the loop stops. Looking again and again at a
  growing sample and stopping at the first significant look would make an A/A pair "worse" far
  more often than alpha says; so alpha is split evenly over the looks (Bonferroni): each look
  tests at alpha / looks. A quiet 3 % slowdown still decides at 6 + 6 invocations, where the
  exact two-sided Mann-Whitney p of fully separated sides is 0.0022.
- **What counts as decided.** worse / better (q below the look's alpha, CI excluding 0, at
  least ``min_effect``), "no change" (the CI inside ± the target resolution), or "within
  resolution" (the CI includes 0 and its half-width is at most the target resolution: the
  machine has resolved the point as finely as asked, and any change is smaller than about
  twice that). A CI that excludes 0 but is not yet significant at the look's alpha is measured
  on: that is a change on its way to a verdict.
- **Noise.** An invocation flagged noisy is not evidence (compare drops it), so the loop simply
  measures more: each noisy invocation is re-measured by a later pair, and counted.
- **Budget.** Before each pair the loop checks that one more pair (timed from the pairs so far)
  fits the budget; when it does not, it stops and says for each undecided point "undecided:
  needs about N more quiet invocations per side".

``run(measure, settings)`` is the loop; ``measure(side, k, only)`` makes one invocation of side
"A" or "B" and returns its loaded ResultFiles (``only``: the undecided points, for drivers that
can re-measure single points; None means all). The `ab` command, ci/nightly and
scripts/kernel-matrix --baseline/--candidate each supply their own ``measure``.
"""

import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field

from . import compare, load, outputs

DECIDED, RESOLVED, UNDECIDED = "decided", "within resolution", "undecided"
# Pairs of invocations at which the comparison is looked at; about x1.4 apart so the number of
# looks, which divides alpha, grows only with the log of the sample.
LOOKS = (4, 6, 8, 12, 16, 24, 32, 48, 64, 96)
EXIT_DECIDED, EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_UNDECIDED = 0, 1, 2, 3


@dataclass
class Settings:
    resolution: float = 1.0  # percent: target CI half-width, and the "no change" margin
    budget: float = 300.0  # seconds for the whole loop
    max_invocations: int = 48  # per side
    alpha: float = 0.05  # over the whole loop, split over the looks
    threshold: float = 5.0  # gate: a "worse" point this big fails
    min_invocations: int = 4
    max_cv: float = 0.10
    min_effect: float = 1.0
    # Invocations flagged noisy count as evidence: only for a deliberate perturbation outside
    # mntscale (--keep-noisy), never for a verdict on a shared machine.
    keep_noisy: bool = False

    def __post_init__(self):
        for name in ("resolution", "budget"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}={v!r} must be a finite number > 0")
        if not isinstance(self.max_invocations, int) or self.max_invocations < self.min_invocations:
            raise ValueError(f"max_invocations={self.max_invocations!r} must be an integer >= "
                             f"min_invocations ({self.min_invocations})")

    # ci/nightly starts from a measured night against a stored baseline: it looks at round 0
    # (the night as measured) and then after every round of re-measuring its undecided points.
    every_round: bool = False

    @property
    def looks(self):
        """The pair (round) counts looked at; a final look is added when the loop stops between them."""
        if self.every_round:
            return list(range(0, self.max_invocations + 1))
        return [n for n in LOOKS if n < self.max_invocations] + [self.max_invocations]

    @property
    def look_alpha(self):
        return self.alpha / (len(self.looks) + 1)

    def options(self):
        return compare.Options(alpha=self.look_alpha, threshold=self.threshold, min_invocations=self.min_invocations,
                               max_cv=self.max_cv, min_effect=self.min_effect, equivalence=self.resolution,
                               keep_noisy=self.keep_noisy)


@dataclass
class PointState:
    run_name: str
    state: str
    verdict: str
    need_more: int = 0  # quiet invocations per side still needed (undecided points)
    text: str = ""


@dataclass
class Outcome:
    settings: Settings
    comparison: object = None
    states: list = field(default_factory=list)
    pairs: int = 0
    noisy_remeasured: int = 0  # invocations measured again because they came out noisy
    looks: int = 0
    seconds: float = 0.0
    stopped: str = ""  # "decided" | "budget" | "max invocations" | "failed: why"

    @property
    def undecided(self):
        return [s for s in self.states if s.state == UNDECIDED]

    @property
    def exit_code(self):
        if self.comparison is None:
            return EXIT_BAD_INPUT
        if self.comparison.gate_failures:
            return EXIT_REGRESSION
        return EXIT_UNDECIDED if self.undecided else EXIT_DECIDED


def need_more(p, settings):
    """Quiet invocations per side that would bring this point's CI half-width to the target
    (it shrinks as 1/sqrt(n)), or up to the gate; at least 1."""
    n = min(p.n_a, p.n_b)
    if n < settings.min_invocations or p.half_width is None:
        return max(settings.min_invocations - n, 1)
    if p.half_width <= settings.resolution:
        return 1
    return max(math.ceil(n * (p.half_width / settings.resolution) ** 2) - n, 1)


def classify(comparison, settings):
    out = []
    for p in comparison.points:
        if p.verdict != compare.INCONCLUSIVE:
            state, text = DECIDED, f"decided: {p.verdict}"
        elif (min(p.n_a, p.n_b) >= settings.min_invocations and p.half_width is not None
              and p.half_width <= settings.resolution and p.ci_low <= 0 <= p.ci_high):
            state, text = RESOLVED, (f"within resolution: CI [{p.ci_low:+.2f}, {p.ci_high:+.2f}]% is "
                                     f"±{p.half_width:.2f}%, the target is ±{settings.resolution:g}%")
        else:
            state, text = UNDECIDED, ""
        s = PointState(p.run_name, state, p.verdict, text=text)
        if state == UNDECIDED:
            s.need_more = need_more(p, settings)
            noisy = p.noisy_inv_a + p.noisy_inv_b
            busy = (f"; {compare.busy_reason(p)}" if noisy and "busy machine" not in p.reason else "")
            s.text = f"undecided: needs about {s.need_more} more quiet invocations per side ({p.reason}{busy})"
        out.append(s)
    return out


def _noisy_invocations(results):
    return sum(1 for r in results for p in r.points for _, noisy in p.invocations(compare.THROUGHPUT) if noisy)


def run(measure, settings, clock=time.monotonic, log=None, initial=None, sides=("A", "B")):
    """Interleaved A/B invocations until every point is decided, the budget ends, or the cap.

    ``initial``: {"A": [...], "B": [...]} results already measured (ci/nightly: the stored
    baseline and tonight's invocations); ``sides``: the sides measure() can add to."""
    log = log or (lambda msg: None)
    opts = settings.options()
    t0 = clock()
    side = {k: list((initial or {}).get(k, [])) for k in ("A", "B")}
    out = Outcome(settings)
    pair_seconds = []
    looks = set(settings.looks)
    while True:
        if out.pairs in looks or (out.pairs and out.pairs >= settings.max_invocations):
            out.comparison = compare.compare_results(side["A"], side["B"], opts)
            out.states = classify(out.comparison, settings)
            out.looks += 1
            log(f"look {out.looks} at {out.pairs} pairs: " + "; ".join(f"{s.run_name}: {s.state}" for s in out.states))
            if out.comparison.points and not out.undecided:
                out.stopped = "decided"
                break
        if out.pairs >= settings.max_invocations:
            out.stopped = "max invocations"
            break
        elapsed = clock() - t0
        if pair_seconds and elapsed + max(pair_seconds[-3:]) > settings.budget:
            out.stopped = "budget"
            break
        only = [p for p in out.comparison.points if p.run_name in {s.run_name for s in out.undecided}] \
            if out.comparison is not None else None
        start = clock()
        order = tuple(sides) if out.pairs % 2 == 0 else tuple(reversed(sides))
        try:
            for s in order:
                side[s] += measure(s, out.pairs, only)
        except RuntimeError as e:
            out.stopped = f"failed: {e}"
            break
        pair_seconds.append(clock() - start)
        out.pairs += 1
        log(f"pair {out.pairs} ({' '.join(order)}) took {pair_seconds[-1]:.1f} s")
    if out.comparison is None or out.looks == 0 or out.pairs not in looks:
        if side["A"] and side["B"]:
            out.comparison = compare.compare_results(side["A"], side["B"], opts)
            out.states = classify(out.comparison, settings)
            out.looks += 1
    out.noisy_remeasured = _noisy_invocations(side["A"]) + _noisy_invocations(side["B"])
    out.seconds = clock() - t0
    return out


def summary(out):
    """The report's header and one line per point."""
    s = out.settings
    lines = ["# mntscale A/B: run until decided", ""]
    if out.comparison is None:
        return "\n".join(lines + [f"**NO RESULT**: {out.stopped or 'nothing was measured'}", ""])
    undecided = out.undecided
    word = ("FAIL" if out.comparison.gate_failures else
            "UNDECIDED" if undecided else "DECIDED")
    reached = compare.resolution_reached(out.comparison) or "no interval yet"
    lines += [f"**{word}** after {out.pairs} interleaved pairs in {out.seconds:.0f} s (stopped: {out.stopped}; "
              f"budget {s.budget:g} s, at most {s.max_invocations} per side)", "",
              f"- Resolution reached: {reached}; target ±{s.resolution:g}%.",
              f"- Gate: {s.min_invocations} quiet invocations per side; {compare.noise_text(out.comparison)} "
              f"({out.noisy_remeasured} re-measured by later pairs).",
              f"- Looks: {out.looks}; alpha {s.alpha:g} split over {len(s.looks) + 1} planned looks: "
              f"each tests at {s.look_alpha:.3g}.", ""]
    lines += [f"- `{p.run_name}`: {p.text}" for p in out.states]
    if undecided:
        most = max(p.need_more for p in undecided)
        noisy, total = out.comparison.noise()
        if total and noisy == total:
            how = "none of this run's invocations came out quiet: run on a quieter machine"
        elif noisy:
            how = (f"at this run's noisy share ({100 * noisy / total:.0f}%), about "
                   f"{math.ceil(most * total / (total - noisy))} more invocations per side; or a quieter machine")
        else:
            how = "more --budget, or a quieter machine"
        lines += ["", f"Undecided: needs about {most} more quiet invocations per side ({how})."]
    lines.append("")
    return "\n".join(lines)


def to_json(out):
    return {"schema": "mntscale-ab", "schema_version": 1, "stopped": out.stopped, "pairs": out.pairs,
            "seconds": round(out.seconds, 1), "looks": out.looks, "look_alpha": out.settings.look_alpha,
            "noisy_remeasured": out.noisy_remeasured,
            "settings": {k: getattr(out.settings, k) for k in ("resolution", "budget", "max_invocations", "alpha",
                                                              "threshold", "min_invocations")},
            "points": [vars(p) for p in out.states],
            "compare": compare.to_json(out.comparison) if out.comparison else None}


# --- the plain two-command A/B ------------------------------------------------------------

def command_measure(cmd_a, cmd_b, outdir, log=None, timeout=3600):
    """measure() for two command lines: each writes one result file. ``{out}`` in a command is
    replaced by the file's path; without it ``--out PATH`` is appended (a `mntscale run …`)."""
    cmds = {"A": shlex.split(cmd_a), "B": shlex.split(cmd_b)}

    def measure(side, k, _only):
        path = os.path.join(outdir, side.lower(), f"invocation-{k + 1:03d}.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        argv = [a.replace("{out}", path) for a in cmds[side]]
        if not any("{out}" in a for a in cmds[side]):
            argv += ["--out", path]
        if log:
            log(f"{side}: {shlex.join(argv)}")
        try:
            r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RuntimeError(f"{side}: {e}") from e
        if r.returncode != 0:
            raise RuntimeError(f"{side} exited {r.returncode}: {r.stderr.strip()[-400:]}")
        try:
            return [load.load_file(path)]
        except load.LoadError as e:
            raise RuntimeError(str(e)) from e
    return measure


def cmd_ab(args):
    try:
        settings = Settings(resolution=args.resolution, budget=args.budget, max_invocations=args.max_invocations,
                            alpha=args.alpha, threshold=args.threshold)
        settings.options()
    except ValueError as e:
        print(f"mntscale_report: ab: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for name in ("a", "b"):
        cmd = getattr(args, name)
        try:
            if not shlex.split(cmd):
                raise ValueError("empty command")
        except ValueError as e:
            print(f"mntscale_report: ab: --{name} {cmd!r}: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    outdir = args.out or time.strftime("ab-%Y%m%d-%H%M%S")
    os.makedirs(outdir, exist_ok=True)

    def log(msg):
        print(f"ab: {msg}", file=sys.stderr, flush=True)
    out = run(command_measure(args.a, args.b, outdir, log), settings, log=log)
    text = summary(out)
    with open(os.path.join(outdir, "ab.md"), "w", encoding="utf-8") as f:
        f.write(text + ("\n" + compare.to_markdown(out.comparison) if out.comparison else ""))
    with open(os.path.join(outdir, "ab.json"), "w", encoding="utf-8") as f:
        json.dump(to_json(out), f, indent=1)
    print(text)
    return out.exit_code


def add_settings_options(p, budget=300.0):
    """--resolution, --budget, --max-invocations: shared by `ab`, ci/nightly and kernel-matrix."""
    p.add_argument("--resolution", type=outputs.POSITIVE, default=1.0,
                   help="percent: stop a point once its 95%% CI half-width is this small; also the 'no change' "
                        "margin (default 1)")
    p.add_argument("--budget", type=outputs.POSITIVE, default=budget, help=f"seconds for the whole loop (default {budget:g})")
    p.add_argument("--max-invocations", type=outputs.number(2, 100000, low_open=False, integer=True), default=48, help="per side (default 48)")


def add_parser(sub):
    p = sub.add_parser("ab", help="run until decided: interleaved A/B invocations of two commands until every "
                                  "point is decided, within --resolution, or the --budget ends (exit 0 decided, "
                                  "1 worse beyond --threshold, 3 undecided, 2 bad input)")
    p.add_argument("--a", required=True, metavar="CMD",
                   help="baseline command, shell-quoted; '{out}' is the result file, else --out FILE is appended")
    p.add_argument("--b", required=True, metavar="CMD", help="candidate command, as --a")
    p.add_argument("--out", help="directory for a/, b/, ab.md, ab.json (default ./ab-DATE)")
    add_settings_options(p)
    p.add_argument("--threshold", type=outputs.POSITIVE, default=5.0,
                   help="percent drop of a worse point that fails (exit 1)")
    p.add_argument("--alpha", type=outputs.number(0, 1), default=0.05, help="over the whole loop (default 0.05)")
    p.set_defaults(func=cmd_ab, outputs=[("--out", "out", "directory", ("ab.md", "ab.json"))])
