"""Sweeps: points of one group that differ only in the parameter on the x axis.

Plots, USL fits, the density table and the findings all need the same slicing, so it
lives here once, and the report computes it once per axis (model.py, build_axes) and hands
the sweeps to each of them. Points from different files with the same group and parameters are
pooled: their repetitions are samples of the same configuration.
"""

import json
from dataclasses import dataclass

from .stats import summarize

# Parameters already part of GroupKey, so not repeated in a sweep's fixed part.
GROUPED_PARAMS = ("placement",)


@dataclass
class Sweep:
    group: object  # load.GroupKey
    x_param: str
    fixed: tuple  # ((name, value), ...) parameters held constant along the sweep
    xs: list
    points: list  # list of lists of Point, one list per x

    def summaries(self, key):
        """One stats.Summary (or None when absent) per x."""
        return [summarize(pts, key) for pts in self.points]

    def series(self, key):
        """(xs, means, errs) restricted to the x values where ``key`` was measured."""
        rows = [(x, s) for x, s in zip(self.xs, self.summaries(key)) if s is not None]
        return [x for x, _ in rows], [s.mean for _, s in rows], [s.err for _, s in rows]

    def fields(self):
        """Descriptive fields used to build legend labels and table rows."""
        g = self.group
        out = {"kernel": g.kernel, "system": g.system, "placement": g.placement, "profile": g.profile}
        out.update({k: str(v) for k, v in self.fixed})
        return out

    @property
    def fixed_text(self):
        return " ".join(f"{k}:{v}" for k, v in self.fixed)


def _freeze(value):
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def build(points, x_param):
    """Sweeps along ``x_param`` for all points that have it, in a stable order.

    Within a scenario, one-point "sweeps" are cross-sections of a sweep along
    another axis (e.g. the worker sweep seen on the container axis); they are
    dropped when that scenario has a real sweep along ``x_param``.
    """
    sweeps = _all_sweeps(points, x_param)
    swept = {s.group.scenario for s in sweeps if len(s.xs) > 1}
    return [s for s in sweeps if len(s.xs) > 1 or s.group.scenario not in swept]


def build_axes(points, axes):
    """{axis: build(points, axis)} for each of ``axes``: the report's sweeps, computed once."""
    return {axis: build(points, axis) for axis in axes}


def _all_sweeps(points, x_param):
    buckets = {}
    for p in points:
        if x_param not in p.params:
            continue
        fixed = tuple(sorted((k, _freeze(v)) for k, v in p.params.items()
                             if k != x_param and k not in GROUPED_PARAMS))
        by_x = buckets.setdefault((p.group, fixed), {})
        by_x.setdefault(p.params[x_param], []).append(p)
    sweeps = []
    for (group, fixed), by_x in buckets.items():
        xs = sorted(by_x)
        sweeps.append(Sweep(group, x_param, fixed, xs, [by_x[x] for x in xs]))
    sweeps.sort(key=lambda s: (s.group.scenario, s.group.kernel, s.group.system, s.group.placement, str(s.fixed)))
    return sweeps


def labels(sweeps, primary):
    """Legend labels: the ``primary`` field plus whichever other fields differ among ``sweeps``."""
    all_fields = [s.fields() for s in sweeps]
    names = list(dict.fromkeys(k for f in all_fields for k in f))
    varying = [k for k in names if k != primary and len({f.get(k) for f in all_fields}) > 1]
    out = []
    for f in all_fields:
        extra = ", ".join(f"{k}={f[k]}" if k not in ("kernel", "system") else f[k]
                          for k in varying if k in f)
        out.append(f[primary] + (f" [{extra}]" if extra else ""))
    return out
