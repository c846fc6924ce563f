"""The `capacity` subcommand: what `mntscale capacity --out FILE.json` found, for people and schedulers.

    mntscale_report.py capacity A.json [B.json ...] [--out DIR]

One result: each objective metric against N (log x) with its bound, N* and its 95% interval marked and
undecided densities marked as such; the attribution buckets against N below; one answer sentence.
Several results (kernels, machines, profiles, churn strategies): a table of their capacities and
the curves overlaid. Always a Kubernetes snippet (node labels and an extended-resource capacity
patch) that is printed and written, never applied. See docs/capacity.md.

The input is the JSON document the contract between the capacity command and this report fixes
(docs/capacity.md, "The result file"); anything else is refused with exit 2 before anything is drawn.
"""

import functools
import json
import math
import os
import re
import stat
import sys
from dataclasses import dataclass

import jsonschema
import matplotlib.pyplot as plt

from . import html
from .load import first_schema_error
from .plots import Plot, _save, slug
from .tables import Table, markdown, num

EXIT_OK, EXIT_BAD_INPUT = 0, 2
MAX_FILE_BYTES = 64 << 20

# The fixed metric set: (what it is, unit, how it reads against N).
METRICS = {
    "start_p50_s": ("container start p50", "s"),
    "start_p99_s": ("container start p99", "s"),
    "health_stat_p99_ms": ("health-check stat p99", "ms"),
    "path_walk_per_worker": ("path-walk throughput per worker", "ops/s"),
    "path_walk_per_cpu_s": ("path-walk throughput per on-CPU second of a walker", "ops/s"),
    "path_walk_ratio": ("path-walk throughput per worker relative to the lowest density", "×"),
    "path_walk_per_cpu_ratio": ("path walks per on-CPU second relative to the lowest density", "×"),
    "mountinfo_read_s": ("runtime-namespace mountinfo read", "s"),
}
OPS = ("<=", ">=")
VERDICTS = ("pass", "fail", "undecided")
ENDED_BY = ("slo", "kernel-limit", "max-containers", "budget", "interrupted")
VERDICT_STYLE = {"pass": ("o", "#2a7d2a", "full"), "fail": ("X", "#c0392b", "full"),
                 "undecided": ("o", "#d68910", "none")}
LABEL_PREFIX = "mntscale.io"
RAW_SECTIONS = ("time_decomposition", "attribution", "waits")  # a run point's own sections
RESOURCE = f"{LABEL_PREFIX}/containers"


class CapacityError(Exception):
    """A file that is not a usable capacity result. ``str()`` starts with the path."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")


@dataclass
class Capacity:
    """One loaded capacity result."""

    path: str
    context: dict
    cap: dict

    @property
    def densities(self):
        """Measured densities in order of N (the file keeps them in the order they were measured)."""
        return sorted(self.cap["densities"], key=lambda d: d["containers"])

    @property
    def result(self):
        return self.cap["result"]

    @property
    def n_star(self):
        return self.result["n_star"]

    @property
    def n_lo(self):
        """The conservative figure (version 2: the interval's lower end; version 1 had only N*)."""
        return self.result.get("n_lo", self.n_star) if self.cap.get("version", 1) >= 2 else self.n_star

    @property
    def n_hi(self):
        return self.result.get("n_hi")

    def interval_text(self):
        """' (95% interval 68–94; schedule by 68)' for a version-2 result; for version 1 the bracket
        ' (N* between 400 and 440)' when a measured density failed above N*; else ''."""
        if self.n_star is None:
            return ""
        if self.cap.get("version", 1) < 2:
            fail = first_failing(self)
            return f" (N* between {_count(self.n_star)} and {_count(fail['containers'])})" if fail else ""
        lo = _count(self.n_lo) if self.n_lo is not None else "below the lowest density"
        hi = (_count(self.n_hi) + ("+" if self.result.get("n_hi_open") else "")) if self.n_hi is not None else "?"
        sched = _count(self.n_lo) if self.n_lo is not None else "none"
        return f" (95% interval {lo}–{hi}; schedule by {sched})"

    @property
    def complete(self):
        return self.cap["complete"] is True and self.result["ended_by"] != "interrupted"

    @property
    def profile(self):
        return str(self.cap.get("profile", "unknown profile"))

    @property
    def strategy(self):
        churn = self.cap.get("churn")
        return str(churn.get("strategy", "?")) if isinstance(churn, dict) else "?"

    @property
    def search(self):
        search = self.cap.get("search")
        return search if isinstance(search, dict) else {}

    @property
    def machine(self):
        m = self.context.get("machine")
        return str(m.get("name")) if isinstance(m, dict) and m.get("name") else str(self.context.get("host_name", "?"))

    @property
    def kernel(self):
        k = self.context.get("kernel")
        return str(k.get("release")) if isinstance(k, dict) and k.get("release") else "unknown kernel"

    def density(self, n):
        return next((d for d in self.cap["densities"] if d["containers"] == n), None)


# --- loading and validation ----------------------------------------------------------------------

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas", "capacity-schema.json")


def _is_number(v):
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _need(cond, path, what):
    if not cond:
        raise CapacityError(path, what)


@functools.lru_cache(maxsize=1)
def schema_validator():
    """A validator for docs/capacity-schema.json (draft 2020-12); an integer is a JSON integer, never 400.0."""
    with open(SCHEMA_FILE, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    strict = cls.TYPE_CHECKER.redefine("integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    return jsonschema.validators.extend(cls, type_checker=strict)(schema)


def _check_schema(path, doc):
    found = first_schema_error(schema_validator(), doc)
    if found is None:
        return
    error, text = found
    what = error.schema.get("description") if isinstance(error.schema, dict) else None
    raise CapacityError(path, text + (f", expected {what}" if what else "") + " (docs/capacity-schema.json)")


def _check_across(path, cap):
    """The rules across fields that docs/capacity-schema.json cannot say."""
    slo_metrics = {s["metric"] for s in cap["slo"]}
    densities = cap["densities"]
    for i, d in enumerate(densities):
        where = f"capacity.densities[{i}]"
        for name in d["verdicts"]:
            _need(name in slo_metrics, path, f"{where}.verdicts names {name!r}, which no objective (slo) has")
        for bucket, v in flat_buckets(d.get("attribution")).items():
            _need(_is_number(v), path, f"{where}.attribution bucket {bucket!r} is {v!r}, not a number")
    counts = [d["containers"] for d in densities]
    _need(len(set(counts)) == len(counts), path, "capacity.densities names one container count twice")
    r = cap["result"]
    n_star = r.get("n_star")
    if cap["version"] < 2:
        _need(n_star is None or n_star in counts, path, f"capacity.result.n_star {n_star} is not a measured density")
    else:  # fitted: between densities, never past the largest measured
        _need(n_star is None or (counts and min(counts) <= n_star <= max(counts)), path,
              f"capacity.result.n_star {n_star} is outside the densities measured")
        _need(n_star is None or r.get("n_lo") is None or r["n_lo"] <= n_star, path,
              f"capacity.result.n_lo {r.get('n_lo')} is above n_star {n_star}")


def validate(path, doc):
    """Raise CapacityError naming the first thing in ``doc`` that breaks the contract: its place in
    the document and why (docs/capacity-schema.json, then the rules across fields)."""
    if isinstance(doc, dict) and "capacity" not in doc and (doc.get("schema") == "mntscale-result"
                                                            or "benchmarks" in doc):
        raise CapacityError(path, "is a `mntscale run` result, not a capacity result "
                                  "(make one with `mntscale capacity ... --out FILE.json`)")
    _check_schema(path, doc)
    _check_across(path, doc["capacity"])


def _refuse_constant(c):
    raise ValueError(f"{c} is not JSON")


def _finite_float(text):
    """1e400 parses as inf: a number out of range, refused like NaN."""
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"number {text[:40]} is out of range")
    return v


def load(path):
    """One capacity result from ``path``; CapacityError when it is not one."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise CapacityError(path, e.strerror or str(e)) from None
    _need(stat.S_ISREG(st.st_mode), path, "not a regular file")
    _need(st.st_size <= MAX_FILE_BYTES, path, f"{st.st_size} bytes, more than a capacity result can be")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CapacityError(path, f"not valid JSON: {e}") from None
    validate(path, doc)
    return Capacity(path, doc["context"], doc["capacity"])


# --- reading a result ----------------------------------------------------------------------------

def flat_buckets(attribution):
    """{bucket: value} of a density's attribution; nested groups (on/off CPU) become 'bucket (group)'.

    The contract's form is {"buckets": {...}, "unit": ...}. A density that instead carries the raw
    sections of a `mntscale run` point ("time_decomposition", "attribution") is read too: on-CPU kernel
    and off-CPU blocked seconds per bucket, summed over roles, per second of worker wall.
    Empty when the attribution is absent or unsupported: a missing figure is absent, never 0.
    """
    a = attribution if isinstance(attribution, dict) else {}
    out = {}
    if isinstance(a.get("buckets"), dict):
        for key, v in a["buckets"].items():
            if isinstance(v, dict):
                out.update({f"{k} ({key})": x for k, x in v.items()})
            else:
                out[key] = v
        return out
    roles = (a.get("time_decomposition") or {}).get("roles") if isinstance(a.get("time_decomposition"), dict) else None
    if isinstance(roles, dict):
        wall = sum(float(r.get("wall_s") or 0) for r in roles.values() if isinstance(r, dict))
        for r in (r for r in roles.values() if isinstance(r, dict) and wall > 0):
            for key, where in (("kernel_s", "on CPU"), ("blocked_s", "off CPU")):
                for bucket, sec in (r.get(key) or {}).items():
                    name = f"{bucket} ({where})"
                    out[name] = out.get(name, 0.0) + sec / wall
        return out
    perf = a.get("attribution")
    if isinstance(perf, dict) and isinstance(perf.get("buckets"), dict):
        return {f"{k} (on CPU)": v for k, v in perf["buckets"].items()}
    return out


def attribution_unit(attribution):
    a = attribution if isinstance(attribution, dict) else {}
    if a.get("unit"):
        return str(a["unit"])
    if isinstance(a.get("time_decomposition"), dict) and "roles" in a["time_decomposition"]:
        return "s per second of worker wall"
    return "share of kernel samples" if isinstance(a.get("attribution"), dict) else ""


def unsupported_reason(attribution):
    """Why a density's attribution is missing ({"unsupported": why}, also inside the raw sections), or None."""
    a = attribution if isinstance(attribution, dict) else {}
    if isinstance(a.get("unsupported"), str):
        return a["unsupported"]
    if flat_buckets(a):
        return None
    for key in ("time_decomposition", "attribution", "waits"):
        if isinstance(a.get(key), dict) and isinstance(a[key].get("unsupported"), str):
            return f"{key}: {a[key]['unsupported']}"
    return None


def unsupported(res):
    """Why attribution is missing: the distinct reasons, in order of N."""
    return list(dict.fromkeys(filter(None, (unsupported_reason(d.get("attribution")) for d in res.densities))))


def metric_name(metric):
    return METRICS[metric][0]


def value_text(v, metric):
    unit = METRICS[metric][1]
    if unit == "ops/s":
        return f"{v:,.0f} ops/s"
    text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return f"{text}×" if unit == "×" else f"{text} {unit}"


def _count(n):
    """12,345 for a count; anything else as it is."""
    return f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else str(n)


def first_failing(res):
    """The density where the objective was first seen to fail above N*: the bracket's top when it failed,
    else the smallest failing density above N*."""
    above = res.n_star or 0
    top = (res.result.get("bracket") or [None, None])[1]
    d = res.density(top) if top else None
    if d and (d["verdict"] == "fail" or (res.cap.get("version", 1) >= 2 and res.result.get("failed_metric"))):
        return d  # version 2: the fit crosses below the bracket's top, whatever that density's own verdict
    return next((d for d in res.densities if d["containers"] > above and d["verdict"] == "fail"), None)


def growing_bucket(res, upto):
    """(bucket, low value, high value, low N) of the attribution bucket that grew most (absolute) from the
    lowest density to ``upto`` (a density), or None when either end has no attribution."""
    low = res.densities[0]
    a, b = flat_buckets(low.get("attribution")), flat_buckets(upto.get("attribution"))
    common = [k for k in a if k in b]
    if not common or low is upto:
        return None
    best = max(common, key=lambda k: b[k] - a[k])
    if b[best] - a[best] <= 0:
        return None
    return best, a[best], b[best], low["containers"]


def _bound_of(res, metric):
    return next((s for s in res.cap["slo"] if s["metric"] == metric), None)


def _objective_clause(res, failing):
    metric = res.result.get("failed_metric")
    if metric is None and failing is not None:
        metric = next((m for m, v in failing["verdicts"].items() if v == "fail"), None)
    if metric is None:
        return None
    s = _bound_of(res, metric)
    clause = f"{metric_name(metric)} ({metric})"
    if s:
        clause += f" {'exceeds' if s['op'] == '<=' else 'falls below'} {value_text(s['bound'], metric)}"
    else:
        clause += " fails its objective"
    measured = ((failing or {}).get("metrics") or {}).get(metric)
    if measured:
        clause += f" (measured {value_text(measured['mean'], metric)} at {_count(failing['containers'])})"
    return clause


ACTOR_NAMES = {"path_walk": "the path walkers'", "health": "the health readers'", "churn": "the churn's"}


def bucket_phrase(bucket):
    """'rcu_wait (churn, off CPU)' -> "the churn's rcu_wait (off CPU)": the actor first (--waits, version 2)."""
    m = re.match(r"^(.*) \(([a-z_]+), ((?:on|off) CPU)\)$", bucket)
    if not m:
        return bucket
    name, actor, where = m.groups()
    return f"{ACTOR_NAMES.get(actor, actor)} {name} ({where})"


def _driver_clause(res, failing):
    if failing is None:
        return ""
    grew = growing_bucket(res, failing)
    if grew:
        bucket, lo, hi, n0 = grew
        bucket = bucket_phrase(bucket)
        unit = attribution_unit(failing.get("attribution"))
        return (f", driven by {bucket}, the attribution bucket that grew most ({lo:.3g} → {hi:.3g} "
                f"{unit} from {_count(n0)} to {_count(failing['containers'])} containers)")
    low = res.densities[0]
    a, b = flat_buckets(low.get("attribution")), flat_buckets(failing.get("attribution"))
    if low is not failing and a and b:
        return (f" (no attribution bucket grew between {_count(low['containers'])} and "
                f"{_count(failing['containers'])} containers: their sum went from {sum(a.values()):.3g} to "
                f"{sum(b.values()):.3g} {attribution_unit(failing.get('attribution'))}, so no driver is named)")
    why = unsupported(res)
    if why:
        return f" (attribution unsupported: {why[0]})"
    return " (no attribution recorded at both ends, so no driver is named)"


def _undecided_note(res):
    und = [d["containers"] for d in res.densities if d["verdict"] == "undecided"]
    if not und:
        return ""
    return (f" {len(und)} densit{'y was' if len(und) == 1 else 'ies were'} undecided after the maximum of "
            f"invocations ({', '.join(map(_count, und))}): counted as not passing, never guessed.")


def noisy_counts(d):
    """(invocations flagged noisy, invocations) of one density."""
    invs = [i for i in d.get("invocations") or [] if isinstance(i, dict)]
    return sum(1 for i in invs if i.get("noisy") is True), len(invs)


def _noise_note(res):
    noisy, total = (sum(x) for x in zip(*(noisy_counts(d) for d in res.densities))) if res.densities else (0, 0)
    if not noisy:
        return ""
    return (f" {noisy} of {total} invocations were flagged noisy (other tasks used the measured CPUs): "
            "these figures describe this machine under its load as much as the mount machinery.")


def _precision_note(res):
    """Issue 22: an N* whose interval did not reach --precision says so (a version-2 result that
    records `precise`), with the fit's fall against the invocations' scatter when it has them."""
    r = res.result
    if res.n_star is None or r.get("precise", True) or (r.get("fit") or {}).get("met_throughout"):
        return ""
    prec = r.get("precision")
    text = (f" N* is not resolved to ±{100 * prec:g}%" if isinstance(prec, (int, float)) else
            " N* is not resolved to its --precision") + f"{res.interval_text()}"
    for o in (r.get("fit") or {}).get("objectives") or []:
        curve, scatter = o.get("curve") or [], o.get("scatter")
        if o.get("metric") != r.get("failed_metric") or not isinstance(scatter, (int, float)) or len(curve) < 2:
            continue
        first, last = curve[0][1], curve[-1][1]
        if first:
            text += (f": the fit of {o['metric']} moves {100 * abs(last - first) / abs(first):.0f}% over the "
                     f"densities measured while single invocations scatter {100 * scatter:.1f}%")
        break
    return text + "."


def _steadiness_note(res):
    """The machine's own speed over the search (result.steadiness), which `noisy` cannot see."""
    st = res.result.get("steadiness") or {}
    cv, drift = st.get("cv_between_invocations"), st.get("drift_within_invocation_max")
    if not isinstance(cv, (int, float)) or not isinstance(drift, (int, float)):
        return ""
    return (f" This machine's own speed (a control loop on the walker's CPU) varied {100 * cv:.1f}% between "
            f"invocations and up to {100 * drift:.0f}% within one.")


def decisive_noise(res):
    """(noisy, invocations) at the densities that decide the answer: N*'s and the first failing one."""
    if res.cap.get("version", 1) >= 2:  # N* falls between the bracket's densities, which the fit crosses
        ds = [res.density(n) for n in (res.result.get("bracket") or []) if n is not None]
    else:
        ds = [res.density(res.n_star) if res.n_star is not None else None, first_failing(res)]
    ds = [d for d in ds if d]
    counts = [noisy_counts(d) for d in ds]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def withheld(res):
    """The "not stated" sentence when most invocations deciding N* were noisy (at least half), else None."""
    noisy, total = decisive_noise(res)
    if total and noisy >= 0.5 * total:
        return (f"Not stated: the capacity of this host at these objectives: measured on a busy machine ({noisy} "
                f"of {total} invocations noisy at the densities that decide it).")
    return None


def sentence(res):
    """The answer, composed from the result: N*, what ended the search, the failed metric, the growing bucket.
    Never from noise: withheld when the deciding densities were measured on a busy machine."""
    if withheld(res):
        return withheld(res) + _noise_note(res)
    r = res.result
    n, ended = res.n_star, r["ended_by"]
    failing = first_failing(res)
    who = f"containers of {res.profile}"
    objective = _objective_clause(res, failing)
    if n is None:
        lowest = res.densities[0]["containers"] if res.densities else None
        text = "No measured density met these objectives"
        if lowest is not None:
            text += f" (the lowest measured was {_count(lowest)} containers)"
        if objective:
            text += f": {objective}{_driver_clause(res, failing)}"
        text += "."
    elif ended == "slo":
        text = f"This host sustains {_count(n)} {who} at these objectives{res.interval_text()}"
        text += (f"; beyond it, {objective}{_driver_clause(res, failing)}." if objective
                 else "; the objective failed above it.")
    elif ended == "kernel-limit":
        lim = r.get("limit") or {}
        value = lim.get("value")
        at = lim.get("at")
        text = (f"This host sustains at least {_count(n)} {who} at these objectives{res.interval_text()}; the search ended at a "
                f"kernel limit, not at an objective: {lim.get('name', 'a kernel limit')}"
                + (f" = {_count(value) if isinstance(value, int) else value}" if value is not None else "")
                + (f" reached at {_count(at)} containers" if isinstance(at, int) else "")
                + ". N* is a floor set by that limit, not by the mount machinery's behaviour.")
    elif ended == "max-containers":
        text = (f"This host sustains at least {_count(n)} {who} at these objectives{res.interval_text()}; every density up to "
                f"--max-containers {_count(res.search.get('max_containers', n))} that was decided passed, "
                "so the search stopped there: the real capacity is higher or unknown.")
    elif ended == "budget":
        bracket = r.get("bracket") or [n, None]
        text = (f"This host sustains at least {_count(n)} {who} at these objectives{res.interval_text()}; the time budget "
                f"({res.search.get('budget_s', '?')} s) ran out before the search reached its precision"
                + (f" (bracket {_count(bracket[0])}–{_count(bracket[1])})" if bracket[1] else "") + ".")
    else:  # interrupted
        text = (f"The search was interrupted (complete=false) after {len(res.densities)} densities: "
                f"{_count(n)} {who} passed so far, which is not an answer.")
    if ended != "interrupted" and not res.complete:
        text += " The file is marked incomplete (complete=false): this is not a final answer."
    return text + _undecided_note(res) + _noise_note(res) + _precision_note(res) + _steadiness_note(res)


# --- Kubernetes snippet --------------------------------------------------------------------------

def label_value(text):
    """A valid label value: at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric."""
    v = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", v) or "unknown"


def publishable(res):
    """Why N* must not be published, or None when it may."""
    if res.n_star is None:
        return "no density met the objectives (n_star is null)"
    if withheld(res):
        return "measured on a busy machine: " + withheld(res)
    if not res.complete:
        return "the search did not complete (complete=false, ended_by " + res.result["ended_by"] + ")"
    if res.n_lo is None:
        return "the 95% interval of N* reaches below the lowest density measured (n_lo is null)"
    return None


def k8s_snippet(res):
    """Shell text with kubectl commands for one result; never run here."""
    head = [f"# mntscale capacity of {res.machine} / kernel {res.kernel} / profile {res.profile} / "
            f"churn {res.strategy} (from {os.path.basename(res.path)})",
            "# NOT applied: review, then run it for each node of this machine type and kernel.",
            "# It holds for nodes like the measured one only; measure each machine type and kernel."]
    why = publishable(res)
    if why:
        return "\n".join(head + [f"# No capacity to publish: {why}.",
                                 "# Re-run `mntscale capacity` to completion; nothing to apply.", ""])
    # The conservative figure: the host sustains at least N_lo at 95%.
    n = res.n_lo
    ended = res.result["ended_by"]
    if res.cap.get("version", 1) >= 2:
        head.append(f"# N*={res.n_star}{res.interval_text()}: the labels and the resource use N_lo={n}.")
    if ended != "slo":
        head.append(f"# N*={n} is a floor: the search ended by {ended}, not by an objective failing.")
    labels = [f"{LABEL_PREFIX}/container-capacity={n}", f"{LABEL_PREFIX}/capacity-profile={label_value(res.profile)}",
              f"{LABEL_PREFIX}/capacity-kernel={label_value(res.kernel)}",
              f"{LABEL_PREFIX}/capacity-churn={label_value(res.strategy)}",
              f"{LABEL_PREFIX}/capacity-ended-by={label_value(ended)}"]
    patch = json.dumps({"status": {"capacity": {RESOURCE: str(n)}}}, separators=(",", ":"))
    return "\n".join(head + [
        'NODE="${NODE:?set NODE to the node name}"',
        "kubectl label node \"$NODE\" --overwrite \\\n  " + " \\\n  ".join(labels),
        f"# Extended resource: pods that request {RESOURCE}: 1 are scheduled at most N* per node.",
        f"kubectl patch node \"$NODE\" --subresource=status --type=merge -p '{patch}'", ""])


# --- tables --------------------------------------------------------------------------------------

def slo_table(res):
    rows = [[s["metric"], metric_name(s["metric"]), s["op"], value_text(s["bound"], s["metric"])]
            for s in res.cap["slo"]]
    return Table("Objectives", ["metric", "what", "op", "bound"], rows)


def _cell(d, metric):
    m = d["metrics"].get(metric)
    if not m:
        return "—"
    text = num(m["mean"])
    if m.get("ci"):
        text += f" [{num(m['ci'][0])}, {num(m['ci'][1])}]"
    v = d["verdicts"].get(metric)
    return text + (f" {v}" if v else "")


def density_table(res):
    metrics = [m for m in METRICS if any(m in d["metrics"] for d in res.densities)]
    rows = []
    for d in res.densities:
        mark = " (N*)" if d["containers"] == res.n_star else ""
        noisy, total = noisy_counts(d)
        rows.append([f"{d['containers']}{mark}", str(d.get("phase", "?")), d["verdict"],
                     f"{total} ({noisy} noisy)" if noisy else str(total), num(d.get("seconds"))]
                    + [_cell(d, m) for m in metrics])
    return Table("Densities", ["containers", "phase", "verdict", "invocations", "seconds"] + metrics, rows,
                 note="mean [CI] and the metric's verdict; undecided = the CI straddles the bound after the maximum "
                      "of invocations.")


def attribution_table(res):
    buckets = list(dict.fromkeys(b for d in res.densities for b in flat_buckets(d.get("attribution"))))
    rows = []
    for d in res.densities:
        a = d.get("attribution")
        why = unsupported_reason(a)
        if why:
            rows.append([str(d["containers"])] + ["—"] * len(buckets) + [f"unsupported: {why}"])
            continue
        fb = flat_buckets(a)
        rows.append([str(d["containers"])] + [num(fb.get(b)) for b in buckets]
                    + ["" if a else "not recorded"])
    unit = next(filter(None, (attribution_unit(d.get("attribution")) for d in res.densities)), "")
    return Table("Attribution against N", ["containers"] + buckets + ["note"], rows, note=unit)


def context_label_parts(res):
    return {"machine": res.machine, "kernel": res.kernel, "profile": res.profile, "churn": res.strategy}


def labels(results):
    """A short label per result from what differs between them (machine, kernel, profile, churn)."""
    parts = [context_label_parts(r) for r in results]
    differ = [k for k in ("machine", "kernel", "profile", "churn") if len({p[k] for p in parts}) > 1]
    out = [" / ".join(p[k] for k in differ) if differ else "" for p in parts]
    if len(set(out)) < len(out) or not all(out):
        out = [(o + " " if o else "") + f"({os.path.basename(r.path)})" for o, r in zip(out, results)]
    return out


def comparison_table(results):
    rows = []
    for label, r in zip(labels(results), results):
        bracket = r.result.get("bracket") or [None, None]
        if r.cap.get("version", 1) >= 2:
            bracket = [r.n_lo, r.n_hi]
        rows.append([label, r.machine, r.kernel, r.profile, r.strategy,
                     _count(r.n_star) if r.n_star is not None else "none",
                     f"[{bracket[0] if bracket[0] is not None else '—'}, {bracket[1] if bracket[1] is not None else '—'}]",
                     r.result["ended_by"] + ("" if r.complete else " (incomplete)"),
                     str(r.result.get("failed_metric") or "—")])
    return Table("Capacities compared", ["label", "machine", "kernel", "profile", "churn", "N*", "interval (v1: bracket)",
                                         "ended by", "failed metric"], rows,
                 note="N* is the largest density that passed every objective; a number measured on one machine and "
                      "kernel, not a property of others.")


# --- plots ---------------------------------------------------------------------------------------

def _metrics_to_draw(results):
    """The objective metrics first, then any other metric measured."""
    slo = list(dict.fromkeys(s["metric"] for r in results for s in r.cap["slo"]))
    return slo or [m for m in METRICS if any(m in d["metrics"] for r in results for d in r.densities)]


def _draw_metric(ax, res, metric, color=None, label=None):
    ds = [d for d in res.densities if metric in d["metrics"]]
    if not ds:
        return
    xs = [d["containers"] for d in ds]
    ys = [d["metrics"][metric]["mean"] for d in ds]
    ax.plot(xs, ys, "-", color=color or "#555555", lw=1, label=label, zorder=1)
    for d, x, y in zip(ds, xs, ys):
        ci = d["metrics"][metric].get("ci")
        marker, c, fill = VERDICT_STYLE[d["verdicts"].get(metric, d["verdict"])]
        c = color or c  # several results: one colour each, the verdict still in the marker's shape and fill
        if ci:
            ax.errorbar([x], [y], yerr=[[max(0.0, y - ci[0])], [max(0.0, ci[1] - y)]], fmt="none",
                        ecolor=c, elinewidth=0.8, capsize=2, zorder=2)
        ax.plot([x], [y], marker=marker, color=c, mfc=c if fill == "full" else "white", mec=c, ms=6, ls="none",
                zorder=3)


def _mark_nstar(ax, res, color="#1f4e9c", text=True):
    bracket = res.result.get("bracket") or [None, None]
    if res.cap.get("version", 1) >= 2:  # the 95% interval, not the bracket
        bracket = [res.n_lo, res.n_hi]
    if bracket[0] and bracket[1]:
        ax.axvspan(bracket[0], bracket[1], color=color, alpha=0.12, lw=0)
    if res.n_star:
        ax.axvline(res.n_star, color=color, ls="--", lw=1)
        if text:
            ax.annotate(f"N*={_count(res.n_star)}", (res.n_star, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -12), textcoords="offset points", fontsize=8, color=color)


def metric_plot(res, outdir, stem="capacity-metrics"):
    metrics = _metrics_to_draw([res])
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7.5, 2.6 * len(metrics)), sharex=True,
                             layout="constrained", squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        _draw_metric(ax, res, metric)
        s = _bound_of(res, metric)
        if s:
            ax.axhline(s["bound"], color="#c0392b", lw=1, ls=":")
            ax.annotate(f"bound {s['op']} {s['bound']:g}", (1.0, s["bound"]), xycoords=("axes fraction", "data"),
                        xytext=(-4, 3), textcoords="offset points", ha="right", fontsize=8, color="#c0392b")
        _mark_nstar(ax, res)
        ax.set_xscale("log")
        ax.set_ylabel(f"{metric}\n({METRICS[metric][1]})", fontsize=8)
    handles = [plt.Line2D([], [], marker=m, color=c, mfc=c if f == "full" else "white", ls="none", label=v)
               for v, (m, c, f) in VERDICT_STYLE.items()]
    axes[0, 0].legend(handles=handles, fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("containers N (log)")
    title = f"Objective metrics against N — {res.profile}, {res.strategy}, {res.machine} / {res.kernel}"
    fig.suptitle(title, fontsize=10)
    return Plot("capacity", title, _save(fig, outdir, stem))


def attribution_plot(res, outdir, stem="capacity-attribution"):
    title = "Attribution against N (buckets, on and off CPU where recorded)"
    ds = [d for d in res.densities if flat_buckets(d.get("attribution"))]
    if not ds:
        why = unsupported(res)
        return Plot("capacity", title, skipped=f"unsupported: {'; '.join(why)}" if why
                    else "no density recorded attribution")
    buckets = list(dict.fromkeys(b for d in ds for b in flat_buckets(d["attribution"])))
    fig, ax = plt.subplots(figsize=(7.5, 3.2), layout="constrained")
    for i, b in enumerate(buckets):
        pts = [(d["containers"], flat_buckets(d["attribution"])[b]) for d in ds if b in flat_buckets(d["attribution"])]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=4, color=f"C{i % 10}", label=b)
    _mark_nstar(ax, res)
    ax.set_xscale("log")
    ax.set_xlabel("containers N (log)")
    ax.set_ylabel(attribution_unit(ds[0]["attribution"]), fontsize=8)
    ax.legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=10)
    return Plot("capacity", title, _save(fig, outdir, stem))


def overlay_plot(results, outdir):
    metrics = _metrics_to_draw(results)
    names = labels(results)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7.5, 2.6 * len(metrics)), sharex=True,
                             layout="constrained", squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        for i, (name, r) in enumerate(zip(names, results)):
            _draw_metric(ax, r, metric, color=f"C{i % 10}", label=name)
            _mark_nstar(ax, r, color=f"C{i % 10}", text=False)
        bounds = {(s["op"], s["bound"]) for r in results for s in r.cap["slo"] if s["metric"] == metric}
        for op, bound in sorted(bounds):
            ax.axhline(bound, color="#c0392b", lw=1, ls=":")
        ax.set_xscale("log")
        ax.set_ylabel(f"{metric}\n({METRICS[metric][1]})", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("containers N (log); dashed: each result's N*, dotted red: bounds; "
                           "X fail, hollow undecided")
    title = "Objective metrics against N, compared"
    fig.suptitle(title, fontsize=10)
    return Plot("capacity", title, _save(fig, outdir, "capacity-compare"))


# --- output --------------------------------------------------------------------------------------

def noise_header(res):
    """The share of noisy invocations next to the rule that withholds the answer."""
    noisy, total = (sum(x) for x in zip(*(noisy_counts(d) for d in res.densities))) if res.densities else (0, 0)
    share = f" ({100 * noisy / total:.0f}%)" if total else ""
    return (f"Noise: {noisy} of {total} invocations{share} flagged noisy; the answer is withheld when at least "
            "half of those deciding it (N*'s density and the first failing one) were.")


def summary_markdown(results, sentences, snippets):
    lines = ["# mntscale capacity", ""]
    if len(results) > 1:
        lines += [markdown(comparison_table(results)), ""]
    for label, r, s, k in zip(labels(results), results, sentences, snippets):
        lines += [f"## {label or os.path.basename(r.path)}" if len(results) > 1 else f"## {os.path.basename(r.path)}",
                  "", f"**{s}**", "", noise_header(r), "", markdown(slo_table(r)), markdown(density_table(r)),
                  markdown(attribution_table(r)), "Kubernetes (not applied):", "", "```sh", k.rstrip(), "```", ""]
    return "\n".join(lines)


def _snippet_name(results, i, r):
    """k8s-capacity.sh, or k8s-capacity-I-FILE.sh per result (I keeps two files of one name apart)."""
    stem = slug(os.path.splitext(os.path.basename(r.path))[0])
    return "k8s-capacity.sh" if len(results) == 1 else f"k8s-capacity-{i + 1}-{stem}.sh"


def write(results, outdir):
    """Plots, index.html, summary.md and the Kubernetes snippets in ``outdir``; returns summary text."""
    sentences = [sentence(r) for r in results]
    snippets = [k8s_snippet(r) for r in results]
    plots = []
    if len(results) > 1:
        plots.append(overlay_plot(results, outdir))
    for i, r in enumerate(results):
        suffix = "" if len(results) == 1 else f"-{i + 1}"
        plots += [metric_plot(r, outdir, "capacity-metrics" + suffix),
                  attribution_plot(r, outdir, "capacity-attribution" + suffix)]
    several = len(results) > 1
    pages = []
    for i, (label, r) in enumerate(zip(labels(results), results)):
        own = plots[(1 if several else 0) + 2 * i:][:2]
        pages.append({"label": label if several else None, "sentence": sentences[i], "slo": slo_table(r),
                      "plots": own, "densities": density_table(r), "attribution": attribution_table(r),
                      "snippet_name": _snippet_name(results, i, r), "snippet": snippets[i]})
    page = html.render("capacity.html", title="mntscale capacity", heading="mntscale capacity",
                       sentences=sentences, comparison=comparison_table(results) if several else None,
                       overlay=plots[0] if several else None, results=pages)
    summary = summary_markdown(results, sentences, snippets)
    files = {"index.html": page, "summary.md": summary}
    files.update({_snippet_name(results, i, r): s for i, (r, s) in enumerate(zip(results, snippets))})
    for name, text in files.items():
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
            f.write(text)
    return summary


# --- command line --------------------------------------------------------------------------------

def cmd_capacity(args, check_outputs=None):
    if check_outputs and args.out and not check_outputs([("--out", args.out, "directory")]):
        return EXIT_BAD_INPUT
    seen = set()
    for path in args.inputs:
        if os.path.realpath(path) in seen:
            print(f"mntscale_report: {path!r} is given more than once", file=sys.stderr)
            return EXIT_BAD_INPUT
        seen.add(os.path.realpath(path))
    results = []
    for path in args.inputs:
        try:
            results.append(load(path))
        except CapacityError as e:
            print(f"mntscale_report: not a capacity result: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        print(write(results, args.out))
        print(f"wrote {os.path.join(args.out, 'index.html')}")
    else:
        print(summary_markdown(results, [sentence(r) for r in results], [k8s_snippet(r) for r in results]))
    return EXIT_OK


def add_parser(sub, check_outputs=None):
    c = sub.add_parser("capacity", help="N*, the curves, the answer sentence and a Kubernetes snippet from "
                                        "`mntscale capacity` results; several files are compared")
    c.add_argument("inputs", nargs="+", metavar="CAPACITY_JSON")
    c.add_argument("--out", help="directory for index.html, summary.md, PNG/SVG plots and k8s-capacity*.sh")
    c.set_defaults(func=lambda args: cmd_capacity(args, check_outputs))
