"""capacity: what a result says: the attribution buckets, the first failing density and the
growing bucket, the notes on noise, precision and steadiness, and the one answer sentence."""

import re
from .model import _count, first_failing, flat_buckets, METRICS


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
