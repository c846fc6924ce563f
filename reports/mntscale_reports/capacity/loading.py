"""capacity: loading a result file: the schema check against docs/capacity-schema.json, then
the rules across fields the schema cannot say (CapacityError on anything else)."""

import functools
import json
import math
import os
import stat

from ..load import first_schema_error, schema_validator_for
from .model import Capacity, flat_buckets, _is_number, MAX_FILE_BYTES


class CapacityError(Exception):
    """A file that is not a usable capacity result. ``str()`` starts with the path."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")


# mntscale_reports/schemas/, beside this package
SCHEMA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas",
                           "capacity-schema.json")


def _need(cond, path, what):
    if not cond:
        raise CapacityError(path, what)


@functools.lru_cache(maxsize=1)
def schema_validator():
    """A validator for docs/capacity-schema.json (draft 2020-12); an integer is a JSON integer, never 400.0."""
    return schema_validator_for(SCHEMA_FILE, strict_integers=True)


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
