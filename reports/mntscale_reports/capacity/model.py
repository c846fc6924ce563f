"""capacity: the result's model: the fixed metrics, objectives' operators, verdicts and
endings, the Capacity a file gives (docs/capacity.md, "The result file"), and the readings it is
built on (its attribution buckets flattened, the first failing density)."""

import math
from dataclasses import dataclass


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


def _is_number(v):
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _count(n):
    """12,345 for a count; anything else as it is."""
    return f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else str(n)


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


def first_failing(res):
    """The density where the objective was first seen to fail above N*: the bracket's top when it failed,
    else the smallest failing density above N*."""
    above = res.n_star or 0
    top = (res.result.get("bracket") or [None, None])[1]
    d = res.density(top) if top else None
    if d and (d["verdict"] == "fail" or (res.cap.get("version", 1) >= 2 and res.result.get("failed_metric"))):
        return d  # version 2: the fit crosses below the bracket's top, whatever that density's own verdict
    return next((d for d in res.densities if d["containers"] > above and d["verdict"] == "fail"), None)
