"""Typed expectations ("claims") from `mntscale list --json`, evaluated on result files.

Each scenario declares claims next to its registration (issue 12); the list document
gives them to the reports:

    {"schema": "mntscale-list/1", "scenarios": [{"name", "expect", "unsupported",
      "axes": [{"name", "type", "aliases", ...}], "claims": [CLAIM, ...]}]}

A claim is evaluated per measurement context (kernel, machine, CPU, profile: results of
different kernels are never mixed) and ends **holds**, **deviates** (with the numbers
and the fit) or **not tested** (with why: the axis was not swept, the points were
skipped, the metric is absent). Series: flat/linear/grows compare points that differ only
in the claim's axis; every other axis is held fixed, so each combination of the others is
its own series and the claim must hold in each. R² is computed on exactly the points
that carry the claim (the series' mean per axis value).
"""

import json
import math
import os
import re
import subprocess
from dataclasses import dataclass, field

import numpy as np

from . import load, stats, tables

LIST_SCHEMA = "mntscale-list/1"
HOLDS, DEVIATES, NOT_TESTED = "holds", "deviates", "not tested"
KINDS = ("flat", "linear", "below", "above", "grows", "ratio")


class ListError(Exception):
    """The scenario list cannot be obtained or is not a mntscale-list/1 document."""


# --- the scenario list ---------------------------------------------------------------------

def parse_list(doc, origin="list"):
    """Validate a decoded `mntscale list --json` document; returns {scenario name: scenario dict}."""
    if not isinstance(doc, dict) or doc.get("schema") != LIST_SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise ListError(f"{origin}: schema is {got!r}, expected {LIST_SCHEMA!r}")
    scenarios = doc.get("scenarios")
    if not isinstance(scenarios, list):
        raise ListError(f"{origin}: missing 'scenarios' list")
    out = {}
    for i, s in enumerate(scenarios):
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            raise ListError(f"{origin}: scenarios[{i}] has no name")
        for key in ("axes", "claims"):
            if not isinstance(s.get(key, []), list):
                raise ListError(f"{origin}: scenario {s['name']}: '{key}' is not a list")
        for j, c in enumerate(s.get("claims", [])):
            if not isinstance(c, dict) or not all(isinstance(c.get(k), str) for k in ("id", "kind", "metric")):
                raise ListError(f"{origin}: scenario {s['name']}: claims[{j}] lacks id, kind or metric")
        out[s["name"]] = s
    return out


def read_list(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise ListError(f"{path}: cannot read: {e}") from e
    except json.JSONDecodeError as e:
        raise ListError(f"{path}: malformed JSON: {e}") from e
    return parse_list(doc, path)


def run_list(binary, timeout=60):
    """`BINARY list --json`, parsed."""
    try:
        proc = subprocess.run([binary, "list", "--json"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ListError(f"{binary} list --json: {e}") from e
    if proc.returncode != 0:
        raise ListError(f"{binary} list --json exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    try:
        return parse_list(json.loads(proc.stdout), f"{binary} list --json")
    except json.JSONDecodeError as e:
        raise ListError(f"{binary} list --json: not JSON: {e}") from e


def default_binary():
    """build/mntscale of this checkout when built, else mntscale on PATH."""
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "build", "mntscale")
    return here if os.access(here, os.X_OK) else "mntscale"


def obtain_list(list_path=None, binary=None):
    """The scenario list from --list, else from running --mntscale (or the default binary)."""
    if list_path:
        return read_list(list_path)
    return run_list(binary or default_binary())


# --- values --------------------------------------------------------------------------------

DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
# A slope unit such as "µs/mount" on a metric in seconds: bounds and display are in µs.
_TIME_PREFIX = {"ns": 1e9, "us": 1e6, "µs": 1e6, "ms": 1e3, "s": 1.0}


def axis_number(axis, value):
    """An axis value as a number for fits and ordering; None when it has none (enum)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if (axis or {}).get("type") == "enum":
        values = [str(v) for v in axis.get("values", [])]
        return float(values.index(text)) if text in values else None
    if text in ("true", "false"):
        return float(text == "true")
    m = re.fullmatch(r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zµ]*)", text)
    if not m:
        return None
    if m.group(2) and m.group(2) not in DURATION_UNITS:
        return None
    return float(m.group(1)) * (DURATION_UNITS[m.group(2)] if m.group(2) else 1.0)


def same_value(a, b):
    """Axis values compare as strings ("10" == 10); numbers by value (1.0 == 1)."""
    if str(a) == str(b):
        return True
    na, nb = axis_number(None, a), axis_number(None, b)
    return na is not None and na == nb


def metric_getter(metric):
    """A repetition's value of a claim metric: a top-level key, an "extra" field, or the per-worker rate."""
    def get(rep):
        if metric == "items_per_second_per_worker":
            ips, workers = rep.get("items_per_second"), (rep.get("params") or {}).get("workers")
            workers = axis_number(None, workers) if workers is not None else None
            if load.is_number(ips) and workers:
                return ips / workers
            return None
        v = rep.get(metric)
        if not load.is_number(v):
            v = (rep.get("extra") or {}).get(metric)
        return v if load.is_number(v) else None
    return get


def fmt(v):
    """A number in a sentence: 3 significant digits, SI prefix for large magnitudes."""
    if v is None:
        return "—"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}"
    return f"{v:.3g}"


# --- points of one scenario in one context --------------------------------------------------

@dataclass
class Cell:
    """All repetitions of one parameter set in one context (pooled across files)."""

    params: dict
    points: list  # load.Point

    def values(self, getter):
        return [v for p in self.points for v in p.values(getter)]

    def mean(self, getter):
        vs = self.values(getter)
        return sum(vs) / len(vs) if vs else None


def context_key(point):
    g = point.group
    return (g.kernel, g.system, g.profile)


def context_label(key):
    kernel, system, profile = key
    return f"{kernel} on {system}, profile {profile}"


def cells_by_context(points, scenario):
    """{context key: [Cell]} for one scenario's measured points."""
    out = {}
    for p in points:
        if p.scenario != scenario:
            continue
        cells = out.setdefault(context_key(p), {})
        key = json.dumps(p.params, sort_keys=True, default=str)
        cells.setdefault(key, Cell(dict(p.params), [])).points.append(p)
    return {k: list(v.values()) for k, v in out.items()}


def _param(params, axis):
    """The value of ``axis`` (a dict from the list, or a name) in params, looking at its aliases."""
    names = [axis["name"]] + list(axis.get("aliases") or []) if isinstance(axis, dict) else [axis]
    for n in names:
        if n in params:
            return params[n]
    return None


def _matches(params, selector, axes):
    return all(_param(params, axes.get(k, k)) is not None and same_value(_param(params, axes.get(k, k)), v)
               for k, v in (selector or {}).items())


def _series(cells, axis, getter, axes):
    """Cells grouped by every param except ``axis``: [(fixed text, [(x value, x number, Cell, mean)])]."""
    name = axis["name"] if isinstance(axis, dict) else axis
    aliases = {name, *((axis.get("aliases") or []) if isinstance(axis, dict) else [])}
    groups = {}
    for c in cells:
        x = _param(c.params, axis)
        mean = c.mean(getter)
        if x is None or mean is None:
            continue
        rest = {k: v for k, v in c.params.items() if k not in aliases}
        groups.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(
            (x, axis_number(axis if isinstance(axis, dict) else None, x), c, mean))
    out = []
    for key, rows in sorted(groups.items()):
        rows.sort(key=lambda r: (r[1] is None, r[1] if r[1] is not None else 0, str(r[0])))
        out.append((fixed_text(json.loads(key), axes), rows))
    return out


def fixed_text(params, axes=None):
    """What a series holds fixed, shortest form: only declared axes when the list gives them."""
    keys = [k for k in params if k in axes] if axes else list(params)
    return ", ".join(f"{k}={params[k]}" for k in sorted(keys))


# --- evaluation ----------------------------------------------------------------------------

@dataclass
class ClaimResult:
    scenario: str
    claim: dict
    status: str
    expected: str
    measured: str = ""
    why: str = ""  # for not tested, and the numbers behind a deviation
    context: str = ""
    fit: dict = field(default_factory=dict)  # slope, intercept, r2, spread_pct, ratio ... (worst series)

    @property
    def fact(self):
        return self.claim.get("text") or self.claim.get("id")

    def to_json(self):
        return {"scenario": self.scenario, "id": self.claim.get("id"), "kind": self.claim.get("kind"),
                "metric": self.claim.get("metric"), "text": self.fact, "status": self.status,
                "expected": self.expected, "measured": self.measured, "why": self.why, "context": self.context,
                "fit": self.fit}


def expected_text(claim):
    k, m = claim.get("kind"), claim.get("metric")
    if k == "flat":
        return f"{m} flat over {claim.get('over')} (spread ≤ {claim.get('within_pct')}%)"
    if k == "linear":
        slope = claim.get("slope")
        text = f"{m} linear in {claim.get('in')} (R² ≥ {claim.get('r2_min')}"
        if slope:
            text += f", slope in [{slope[0]:g}, {slope[1]:g}] {claim.get('unit', '')}".rstrip()
        return text + ")"
    if k in ("below", "above"):
        return f"{m} {'<' if k == 'below' else '>'} {claim.get('value'):g}"
    if k == "grows":
        ratio = claim.get("min_ratio")
        return f"{m} grows with {claim.get('with')}" + (f" (last/first ≥ {ratio:g})" if ratio else "")
    if k == "ratio":
        lo, hi = claim.get("range", [None, None])
        return f"{m} at {_sel(claim.get('num'))} / at {_sel(claim.get('den'))} in [{lo:g}, {hi:g}]"
    return f"{m}: {k}"


def _sel(selector):
    return ", ".join(f"{k}={v}" for k, v in (selector or {}).items()) or "all"


def _slope_scale(claim):
    """(factor, unit) to show and bound a slope: µs/mount on a metric in seconds is 1e6."""
    unit = claim.get("unit") or ""
    head = unit.split("/")[0].strip()
    if "second" in claim.get("metric", "") and head in _TIME_PREFIX:
        return _TIME_PREFIX[head], unit
    return 1.0, unit


def linear_fit(xs, ys):
    """Least squares y = a + b x; (a, b, r2). R² on exactly these points; 1.0 when y is constant."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    b, a = np.polyfit(xs, ys, 1)
    total = float(np.sum((ys - ys.mean()) ** 2))
    resid = float(np.sum((ys - (a + b * xs)) ** 2))
    return float(a), float(b), (1.0 - resid / total) if total > 0 else 1.0


def spread_pct(values):
    """(max − min) / mean of the values, in percent."""
    mean = sum(values) / len(values)
    return 100.0 * (max(values) - min(values)) / abs(mean) if mean else math.inf


def _range_text(rows, axis_name):
    return f"{rows[0][0]}→{rows[-1][0]} {axis_name}"


def _eval_series_claim(claim, series, axis_name, scale):
    """flat / linear / grows over each series; returns (status, measured, why, fit) for the worst."""
    kind = claim["kind"]
    results = []  # (ok, badness, measured text, fit)
    for fixed, rows in series:
        means = [r[3] for r in rows]
        where = f"{_range_text(rows, axis_name)}" + (f" at {fixed}" if fixed else "")
        if kind == "flat":
            sp = spread_pct(means)
            limit = float(claim.get("within_pct", 0))
            results.append((sp <= limit, sp - limit, f"spread {sp:.1f}% ({fmt(min(means))}–{fmt(max(means))}) "
                            f"over {where}", {"spread_pct": round(sp, 3)}))
        elif kind == "grows":
            ratio = means[-1] / means[0] if means[0] else math.inf
            need = float(claim.get("min_ratio") or 1.0)
            ok = ratio >= need if claim.get("min_ratio") else ratio > 1.0
            results.append((ok, need - ratio, f"×{ratio:.3g} ({fmt(means[0])} → {fmt(means[-1])}) over {where}",
                            {"ratio": round(ratio, 6)}))
        elif kind == "linear":
            xs = [r[1] for r in rows]
            a, b, r2 = linear_fit(xs, means)
            r2_min = float(claim.get("r2_min", 0))
            slope = claim.get("slope")
            shown = b * scale[0]
            ok_slope = not slope or slope[0] <= shown <= slope[1]
            unit = scale[1] or f"per {axis_name}"
            bad = max(r2_min - r2, 0.0) + (0.0 if ok_slope else 1.0)
            results.append((r2 >= r2_min and ok_slope, bad,
                            f"slope {shown:.3g} {unit}, R² {r2:.3f} on {len(xs)} points over {where}",
                            {"slope": b, "intercept": a, "r2": round(r2, 6), "points": len(xs)}))
    worst = max(results, key=lambda r: r[1])
    failing = [r for r in results if not r[0]]
    measured = worst[2] + (f" (worst of {len(results)} series)" if len(results) > 1 else "")
    why = "; ".join(r[2] for r in failing) if failing and len(results) > 1 else ""  # one series: measured says it
    return (HOLDS if not failing else DEVIATES), measured, why, worst[3]


def evaluate_claim(scenario, claim, cells, axes, skips):
    """One claim on one context's cells of ``scenario``; ``axes`` {name: axis dict}; ``skips`` reasons."""
    res = ClaimResult(scenario, claim, NOT_TESTED, expected_text(claim))
    kind = claim.get("kind")
    if kind not in KINDS:
        res.why = f"unknown claim kind {kind!r} (this report knows {', '.join(KINDS)})"
        return res
    cells = [c for c in cells if _matches(c.params, claim.get("where"), axes)]
    getter = metric_getter(claim["metric"])
    if not cells:
        res.why = ("points skipped: " + "; ".join(sorted(set(skips)))) if skips else "no point of this scenario " \
            + (f"with {_sel(claim.get('where'))} " if claim.get("where") else "") + "was measured"
        return res
    cells = [c for c in cells if c.values(getter)]
    if not cells:
        res.why = f"metric {claim['metric']} absent from the measured points"
        return res
    noisy, total = stats.noisy_share([p for c in cells for p in c.points])
    if stats.busy(noisy, total):  # never a fact from noise (issue 23): neither holds nor deviates
        res.why = f"measured on a busy machine ({noisy} of {total} repetitions noisy)"
        return res
    if kind in ("below", "above"):
        value = float(claim["value"])
        means = [(c.mean(getter), c) for c in cells]
        worst_mean, worst = (max if kind == "below" else min)(means, key=lambda m: m[0])
        ok = all((m < value) if kind == "below" else (m > value) for m, _ in means)
        res.status = HOLDS if ok else DEVIATES
        res.measured = f"{'max' if kind == 'below' else 'min'} {fmt(worst_mean)} at " \
                       f"{fixed_text(worst.params, axes)} ({len(means)} point{'s' if len(means) > 1 else ''})"
        res.fit = {"worst": worst_mean}
        return res
    if kind == "ratio":
        return _eval_ratio(res, claim, cells, getter, axes)
    axis_name = claim.get({"flat": "over", "linear": "in", "grows": "with"}[kind])
    axis = axes.get(axis_name, {"name": axis_name})
    series = [(f, rows) for f, rows in _series(cells, axis, getter, axes) if len({str(r[0]) for r in rows}) >= 2]
    if kind == "linear":
        if any(r[1] is None for _, rows in series for r in rows):
            res.why = f"axis {axis_name} has non-numeric values: no linear fit"
            return res
        series = [(f, rows) for f, rows in series if len(rows) >= 3]
    if not series:
        seen = sorted({str(_param(c.params, axis)) for c in cells if _param(c.params, axis) is not None})
        need = 3 if kind == "linear" else 2
        res.why = (f"axis {axis_name} not swept (needs {need} values with the other axes fixed; measured "
                   f"{', '.join(seen) if seen else 'no value of it'})")
        return res
    res.status, res.measured, res.why, res.fit = _eval_series_claim(claim, series, axis_name, _slope_scale(claim))
    return res


def _eval_ratio(res, claim, cells, getter, axes):
    num, den = claim.get("num") or {}, claim.get("den") or {}
    selected = set(num) | set(den)
    lo, hi = claim.get("range", [-math.inf, math.inf])

    def rest(c):
        return json.dumps({k: v for k, v in c.params.items() if k not in selected}, sort_keys=True, default=str)

    nums = {rest(c): c for c in cells if _matches(c.params, num, axes)}
    dens = {rest(c): c for c in cells if _matches(c.params, den, axes)}
    pairs = [(nums[k], dens[k]) for k in sorted(nums) if k in dens]
    if not pairs:
        missing = "numerator" if not nums else "denominator" if not dens else "matching pair"
        res.why = f"no {missing} point measured ({_sel(num)} / {_sel(den)})"
        return res
    ratios = []
    for n, d in pairs:
        dm = d.mean(getter)
        ratios.append((n.mean(getter) / dm if dm else math.inf, n))
    bad = [(r, n) for r, n in ratios if not lo <= r <= hi]
    worst = max(ratios, key=lambda rn: max(lo - rn[0], rn[0] - hi))
    res.status = DEVIATES if bad else HOLDS
    res.measured = f"ratio {worst[0]:.3g}" + (f" (worst of {len(ratios)} pairs)" if len(ratios) > 1 else "")
    if bad:
        res.why = "; ".join(f"{r:.3g} at {fixed_text({k: v for k, v in n.params.items() if k not in selected}, axes)}"
                            for r, n in bad)
    res.fit = {"ratio": worst[0], "pairs": len(ratios)}
    return res


def _skips_of(results, scenario):
    """Skip reasons of a scenario's points (entries name the scenario or start with it)."""
    out = []
    for r in results:
        for s in r.skipped:
            if s.name.split("/")[0] == scenario:
                out.append(s.reason)
    return out


def evaluate(results, scenarios):
    """Every claim of every listed scenario on the loaded results: [ClaimResult].

    A scenario with no measured point yields one "not tested" result per claim; a scenario
    listed as unsupported says so.
    """
    points = load.all_points(results)
    out = []
    for name, sc in scenarios.items():
        axes = {a["name"]: a for a in sc.get("axes", []) if isinstance(a, dict) and "name" in a}
        skips = _skips_of(results, name)
        contexts = cells_by_context(points, name) or {None: []}
        for ctx, cells in sorted(contexts.items(), key=lambda kv: str(kv[0])):
            for claim in sc.get("claims", []):
                if not cells and sc.get("unsupported"):
                    r = ClaimResult(name, claim, NOT_TESTED, expected_text(claim), why=f"unsupported: "
                                    f"{sc['unsupported']}".replace("unsupported: unsupported:", "unsupported:"))
                else:
                    r = evaluate_claim(name, claim, cells, axes, skips)
                r.context = context_label(ctx) if ctx else ""
                out.append(r)
    return out


def measured_scenarios(results):
    return {p.scenario for p in load.all_points(results)} | {s.name.split("/")[0] for r in results for s in r.skipped}


def relevant(scenarios, results):
    """Only the scenarios the results ran (measured or skipped): a preset runs some, not all."""
    ran = measured_scenarios(results)
    return {k: v for k, v in scenarios.items() if k in ran}


def counts(claim_results):
    out = {HOLDS: 0, DEVIATES: 0, NOT_TESTED: 0}
    for r in claim_results:
        out[r.status] += 1
    return out


# --- output --------------------------------------------------------------------------------

def facts_rows(claim_results, with_context=None):
    """Rows of the facts table: fact, expected, measured, verdict (with the why)."""
    if with_context is None:
        with_context = len({r.context for r in claim_results}) > 1
    rows = []
    for r in claim_results:
        fact = f"{r.scenario}: {r.fact}" + (f" [{r.context}]" if with_context and r.context else "")
        verdict = r.status + (f": {r.why}" if r.why and r.status != HOLDS else "")
        rows.append([fact, r.expected, r.measured or "—", verdict])
    return rows


FACTS_HEADERS = ["fact", "expected", "measured", "holds / deviates"]


def to_markdown(claim_results):
    c = counts(claim_results)
    lines = ["# mntscale facts", "",
             f"{c[HOLDS]} hold, {c[DEVIATES]} deviate, {c[NOT_TESTED]} not tested.", ""]
    if claim_results:
        lines.append(tables.pipe_table(FACTS_HEADERS, facts_rows(claim_results)))
    return "\n".join(lines) + "\n"


def to_json(claim_results):
    return {"schema": "mntscale-claims", "schema_version": 1, "counts": counts(claim_results),
            "claims": [r.to_json() for r in claim_results]}
