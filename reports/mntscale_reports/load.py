"""Load and validate mntscale result files (docs/results-schema.md, schema_version 1).

A bad file must never take the whole report down: ``load_many`` collects one
``LoadError`` per rejected file (its message names the file) and goes on.
A file is checked against docs/results-schema.json (types of every known field,
ranges of measured values) before anything reads it, so later stages can trust
the types; numbers must be finite, nesting shallow and the file a regular one.
"""

import functools
import json
import math
import os
import stat
from dataclasses import dataclass, field

import jsonschema

SCHEMA_NAME = "mntscale-result"
SUPPORTED_VERSIONS = (1,)
# docs/results-schema.json, through the package's schemas/ link so that an installed package has it too.
SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas", "results-schema.json")
# A night of 100 invocations of the default preset is a few MB; this only stops /dev/zero-like input.
MAX_FILE_BYTES = 512 << 20
# The writer nests about 6 levels deep; deeper input is hostile (Python's JSON decoder and
# encoder recurse, so thousands of levels raise RecursionError).
MAX_DEPTH = 64
# Integers beyond 64 bits cannot come from the writer and overflow float().
MAX_INT = 1 << 64
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
        return self.raw.get("complete", True) is True

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

    def invocations(self, key):
        """(mean of ``key``, noisy) per invocation, in invocation_means' order.

        An invocation is noisy when any of its repetitions of this point carries mntscale's
        "noisy" flag (other tasks or the hypervisor took the worker CPUs while it measured):
        its mean then measures the machine as much as the kernel, so compare drops it.
        """
        get = _getter(key)
        by_inv = {}
        for r in self.reps:
            v = get(r)
            if is_number(v):
                vs, noisy = by_inv.get(r.get("invocation", 0), ([], False))
                by_inv[r.get("invocation", 0)] = (vs + [float(v)], noisy or bool(r.get("noisy")))
        return [(sum(vs) / len(vs), noisy) for _, (vs, noisy) in sorted(by_inv.items(), key=lambda kv: str(kv[0]))]

    def noisy_reps(self):
        """Repetitions mntscale flagged "noisy"."""
        return sum(1 for r in self.reps if isinstance(r, dict) and r.get("noisy"))

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
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) < MAX_INT if isinstance(v, int) else math.isfinite(v)


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


def schema_validator_for(path, strict_integers=False):
    """A validator for the JSON Schema at path, checked itself first. strict_integers: an
    integer is a JSON integer, never 400.0 (nor a bool)."""
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    if strict_integers:
        strict = cls.TYPE_CHECKER.redefine("integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
        cls = jsonschema.validators.extend(cls, type_checker=strict)
    return cls(schema)


@functools.lru_cache(maxsize=1)
def schema_validator():
    """A validator for docs/results-schema.json (draft 2020-12)."""
    return schema_validator_for(SCHEMA_FILE)


def _where(error):
    """'benchmarks[3].params.containers' for a schema error's location in the document."""
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def first_schema_error(validator, doc):
    """The most relevant error of doc against a schema, as (error, "where: message"), or None.
    Shared by run results (here) and capacity results (capacity.py)."""
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return None
    message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
    return error, f"{_where(error)}: {message}"


def _check_schema(path, raw):
    found = first_schema_error(schema_validator(), raw)
    if found is not None:
        raise LoadError(path, f"{found[1]} (docs/results-schema.json)")


def _check_values(path, raw):
    """Nesting depth, finite numbers and 64-bit integers everywhere (known keys or not), without recursion."""
    stack = [(raw, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise LoadError(path, f"nested deeper than {MAX_DEPTH} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, depth + 1) for c in children)
        elif isinstance(node, float) and not math.isfinite(node):
            raise LoadError(path, f"non-finite number {node} (JSON has no NaN or Infinity)")
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) >= MAX_INT:
            raise LoadError(path, f"integer {str(node)[:40]}… does not fit in 64 bits")


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
    _check_values(path, raw)
    _check_header(path, raw)
    for i, entry in enumerate(raw["benchmarks"]):
        if isinstance(entry, dict) and entry.get("run_type") != "aggregate" and skip_reason(entry) is None:
            _check_entry(path, i, entry)
    _check_schema(path, raw)
    result = ResultFile(path=path, raw=raw)
    by_run = {}
    for i, entry in enumerate(raw["benchmarks"]):
        if isinstance(entry, dict) and entry.get("run_type") == "aggregate":
            continue  # recomputed from repetitions, see the schema's last rule
        reason = skip_reason(entry)
        if reason is not None:
            result.skipped.append(Skip(path, str(entry.get("name", "?")), entry.get("repetition_index"), reason))
            continue
        by_run.setdefault(entry["run_name"], []).append(entry)
    for run_name, reps in by_run.items():
        first = reps[0]
        result.points.append(Point(result, run_name, str(first["scenario"]), dict(first["params"]), reps))
    return result


def _no_constant(name):
    raise ValueError(f"non-finite number {name} (JSON has no NaN or Infinity)")


def load_file(path):
    """Read and validate one result file; raises LoadError naming the file."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise LoadError(path, "not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise LoadError(path, f"{st.st_size} bytes, more than the {MAX_FILE_BYTES >> 20} MiB a result file may have")
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_FILE_BYTES + 1)
    except (OSError, UnicodeDecodeError) as e:
        raise LoadError(path, f"cannot read: {e}") from e
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except ValueError as e:  # JSONDecodeError, or NaN/Infinity from _no_constant
        raise LoadError(path, f"malformed JSON: {e}") from e
    except RecursionError as e:
        raise LoadError(path, "malformed JSON: nested too deeply to decode") from e
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


def duplicates(paths):
    """Files that ``paths`` name more than once (directly or through a directory), as given."""
    seen, out = set(), []
    for path in expand_paths(paths):
        real = os.path.realpath(path)
        if real in seen:
            out.append(path)
        seen.add(real)
    return out


def load_many(paths):
    """Load every file under ``paths``; returns (results, errors) and never raises LoadError.

    A file named twice is loaded once; the repeat is an error (its points would count twice).
    """
    results, errors, seen = [], [], set()
    for path in expand_paths(paths):
        real = os.path.realpath(path)
        if real in seen:
            errors.append(LoadError(path, "given more than once"))
            continue
        seen.add(real)
        try:
            results.append(load_file(path))
        except LoadError as e:
            errors.append(e)
    return results, errors


def all_points(results):
    return [p for r in results for p in r.points]


def all_skips(results):
    return [s for r in results for s in r.skipped]


# --- which machine and kernel (issue 28: group by what the files say, not by folder) ----------

def machine_name(result):
    """context.machine.name of a result, or None when the file does not say."""
    m = result.context.get("machine")
    name = m.get("name") if isinstance(m, dict) else None
    return str(name) if name not in (None, "") else None


def kernel_release(result):
    """context.kernel.release of a result, or None when the file does not say."""
    k = result.context.get("kernel")
    release = k.get("release") if isinstance(k, dict) else None
    return str(release) if release not in (None, "") else None


def mix(results, of):
    """{value: file count} of ``of(result)`` over results that say (None left out), most files first."""
    counts = {}
    for r in results:
        v = of(r)
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def describe_mix(counts):
    """'a (3 files), b (2 files)'."""
    return ", ".join(f"{v} ({n} file{'s' if n != 1 else ''})" for v, n in counts.items())
