"""Load and validate mntscale result files (docs/results-schema.md, schema_version 1).

A bad file must never take the whole report down: ``load_many`` collects one
``LoadError`` per rejected file (its message names the file) and goes on.
"""

import json
import math
import os
from dataclasses import dataclass, field

SCHEMA_NAME = "mntscale-result"
SUPPORTED_VERSIONS = (1,)
# Keys every measured (not skipped) iteration entry must carry to be plotted.
REQUIRED_POINT_KEYS = ("run_name", "scenario", "params", "items_per_second")


class LoadError(Exception):
    """A result file that cannot be used. ``str()`` starts with the file path."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class GroupKey:
    """What separates results that must not be pooled: the schema's grouping fields."""

    kernel: str
    cpu: str
    machine: str
    placement: str
    scenario: str
    profile: str

    @property
    def system(self):
        """Machine and CPU together: how procurement plots name a line."""
        return f"{self.machine} ({self.cpu})"


@dataclass
class ResultFile:
    """One loaded result file: its context plus measured and skipped points."""

    path: str
    raw: dict
    points: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    @property
    def context(self):
        return self.raw.get("context", {})

    @property
    def complete(self):
        return bool(self.raw.get("complete", True))

    @property
    def kernel_release(self):
        return str(_dig(self.context, "kernel", "release", default="unknown"))

    @property
    def emulated(self):
        kernel = self.context.get("kernel", {})
        return bool(kernel.get("emulated")) or kernel.get("accelerator") == "tcg"

    @property
    def kernel_label(self):
        """Kernel release, marked when timings come from an emulator (not real speed)."""
        suffix = " (emulated)" if self.emulated else ""
        return self.kernel_release + suffix

    @property
    def cpu_model(self):
        return str(_dig(self.context, "cpu", "model", default="unknown CPU"))

    @property
    def machine_name(self):
        return str(_dig(self.context, "machine", "name", default=self.context.get("host_name", "unknown")))

    @property
    def profile_name(self):
        return str(_dig(self.context, "profile", "name", default="unknown"))


@dataclass
class Point:
    """All repetitions of one run_name from one file (the schema's unit of aggregation)."""

    source: ResultFile
    run_name: str
    scenario: str
    params: dict
    reps: list

    @property
    def placement(self):
        return str(self.params.get("placement", self.source.context.get("placement", "unknown")))

    @property
    def group(self):
        src = self.source
        return GroupKey(src.kernel_label, src.cpu_model, src.machine_name,
                        self.placement, self.scenario, src.profile_name)

    def values(self, key):
        """Per-repetition values of a numeric key, skipping repetitions that lack it.

        ``key`` is a top-level key name or a function of one repetition's dict,
        for nested or derived values (latency percentiles, time shares).
        """
        return [float(v) for v in map(_getter(key), self.reps) if is_number(v)]

    def invocation_means(self, key):
        """One value per independent invocation: the mean of ``key`` over its repetitions.

        A plain result file is one invocation. A file that merges several (ci/nightly's
        night) tags each repetition with ``invocation``; those are split here. The
        invocation, not the repetition, is compare's sampling unit: repetitions of one
        invocation share its farm, caches and host state, so they drift together.
        """
        get = _getter(key)
        by_inv = {}
        for r in self.reps:
            v = get(r)
            if is_number(v):
                by_inv.setdefault(r.get("invocation", 0), []).append(float(v))
        return [sum(vs) / len(vs) for _, vs in sorted(by_inv.items(), key=lambda kv: str(kv[0]))]

    def windows(self):
        """All per-window throughputs of all repetitions (ops/s)."""
        return [float(w) for r in self.reps for w in r.get("windows") or [] if is_number(w)]

    def with_key(self, key):
        """Repetitions that carry an optional section such as latency_ns or attribution."""
        return [r[key] for r in self.reps if isinstance(r.get(key), dict)]


@dataclass
class Skip:
    """A point that could not run: listed in tables, never plotted."""

    path: str
    name: str
    repetition_index: object
    reason: str


def _getter(key):
    """A repetition's value: ``key`` is a top-level key name or a function of the repetition's dict."""
    return key if callable(key) else (lambda r: r.get(key))


def _dig(d, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def skip_reason(entry):
    """Why an entry has no numbers, or None when it was measured."""
    if entry.get("skipped"):
        return str(entry["skipped"])
    if entry.get("error_occurred"):
        return "error: " + str(entry.get("error_message", "unknown error"))
    return None


def _check_header(path, raw):
    if not isinstance(raw, dict):
        raise LoadError(path, "top level is not a JSON object")
    if raw.get("schema") != SCHEMA_NAME:
        raise LoadError(path, f"schema is {raw.get('schema')!r}, expected {SCHEMA_NAME!r}")
    version = raw.get("schema_version")
    if version not in SUPPORTED_VERSIONS:
        raise LoadError(path, f"unknown schema_version {version!r} (this report reads {list(SUPPORTED_VERSIONS)})")
    if not isinstance(raw.get("context"), dict):
        raise LoadError(path, "missing or invalid 'context' object")
    if not isinstance(raw.get("benchmarks"), list):
        raise LoadError(path, "missing or invalid 'benchmarks' list")


def _check_entry(path, index, entry):
    where = f"benchmarks[{index}]"
    if not isinstance(entry, dict):
        raise LoadError(path, f"{where} is not an object")
    missing = [k for k in REQUIRED_POINT_KEYS if k not in entry]
    if missing:
        raise LoadError(path, f"{where} ({entry.get('name', '?')}) lacks {', '.join(missing)}")
    if not isinstance(entry["params"], dict):
        raise LoadError(path, f"{where}: params is not an object")
    if not is_number(entry["items_per_second"]):
        raise LoadError(path, f"{where}: items_per_second is not a finite number")


def parse(path, raw):
    """Validate a decoded result and split it into points and skips; raises LoadError."""
    _check_header(path, raw)
    result = ResultFile(path=path, raw=raw)
    by_run = {}
    for i, entry in enumerate(raw["benchmarks"]):
        if isinstance(entry, dict) and entry.get("run_type") == "aggregate":
            continue  # recomputed from repetitions, see the schema's last rule
        reason = skip_reason(entry) if isinstance(entry, dict) else None
        if reason is not None:
            result.skipped.append(Skip(path, str(entry.get("name", "?")), entry.get("repetition_index"), reason))
            continue
        _check_entry(path, i, entry)
        by_run.setdefault(entry["run_name"], []).append(entry)
    for run_name, reps in by_run.items():
        first = reps[0]
        result.points.append(Point(result, run_name, str(first["scenario"]), dict(first["params"]), reps))
    return result


def load_file(path):
    """Read and validate one result file; raises LoadError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise LoadError(path, f"cannot read: {e}") from e
    except json.JSONDecodeError as e:
        raise LoadError(path, f"malformed JSON: {e}") from e
    return parse(path, raw)


# ci/nightly keeps a night's raw invocations, compare output and report beside the night's
# merged result, in <night>.artifacts/. Scanning a results tree must not count them twice.
ARTIFACTS_SUFFIX = ".artifacts"


def expand_paths(paths):
    """Files as given, directories scanned (recursively, sorted) for *.json.

    Directories named ``*.artifacts`` are skipped while scanning (given directly, they
    are read like any other).
    """
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.endswith(ARTIFACTS_SUFFIX))
                files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(".json"))
        else:
            files.append(p)
    return files


def load_many(paths):
    """Load every file under ``paths``; returns (results, errors) and never raises LoadError."""
    results, errors = [], []
    for path in expand_paths(paths):
        try:
            results.append(load_file(path))
        except LoadError as e:
            errors.append(e)
    return results, errors


def all_points(results):
    return [p for r in results for p in r.points]


def all_skips(results):
    return [s for r in results for s in r.skipped]
