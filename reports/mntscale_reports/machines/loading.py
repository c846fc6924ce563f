"""machines: reading one directory of result files per machine into a Machine, each with its
colour (fixed by its position on the command line)."""

import json
import os
from dataclasses import dataclass, field

import matplotlib

from .. import load


# tab10: fixed by the machine's position on the command line, the same in every panel.
COLORS = matplotlib.colormaps["tab10"].colors


class MachinesError(Exception):
    """Bad input: the CLI prints it and exits 2."""


@dataclass
class Machine:
    name: str
    directory: str
    results: list
    color: str = "black"
    points: dict = field(default_factory=dict)  # (scenario, params json) -> [Point]
    skips: dict = field(default_factory=dict)  # run_name -> reason
    warnings: list = field(default_factory=list)  # e.g. one directory, several kernels

    @property
    def topology(self):
        for r in self.results:
            t = r.context.get("topology")
            if isinstance(t, dict):
                return t
        return {}

    @property
    def kernels(self):
        """Kernel releases of the machine's results, each marked when it ran emulated (TCG)."""
        out = set()
        for r in self.results:
            k = r.context.get("kernel")
            if isinstance(k, dict) and isinstance(k.get("release"), str):
                emulated = k.get("emulated") is True
                out.add(k["release"] + (f" (emulated: {k.get('accelerator', 'tcg')}; not hardware timings)"
                                        if emulated else ""))
        return sorted(out)

    @property
    def has_smt(self):
        t = self.topology
        return bool(t.get("pus") and t.get("cores") and t["pus"] > t["cores"])

    @property
    def invocations(self):
        return len(self.results)

    def noisy(self):
        reps = [rep for pts in self.points.values() for p in pts for rep in p.reps]
        return sum(1 for rep in reps if rep.get("noisy")), len(reps)


def _key(point):
    return point.scenario, json.dumps(point.params, sort_keys=True)


def _name_from(results, directory):
    names = {str(r.context["machine"]["name"]) for r in results
             if isinstance(r.context.get("machine"), dict) and r.context["machine"].get("name")}
    if len(names) == 1:
        return names.pop()
    return os.path.basename(os.path.normpath(directory)) or directory


def load_machines(directories):
    """One Machine per directory; raises MachinesError on bad input. Returns (machines, load errors)."""
    if len(directories) < 2:
        raise MachinesError("machines needs at least two directories (one per machine) to compare")
    seen, machines, errors = {}, [], []
    for d in directories:
        if not os.path.isdir(d):
            raise MachinesError(f"{d!r} is not a directory (give one directory of result files per machine)")
        real = os.path.realpath(d)
        if real in seen:
            raise MachinesError(f"{d!r} is given more than once")
        seen[real] = d
        results, errs = load.load_many([d])
        errors += errs
        if not results:
            raise MachinesError(f"{d!r}: no result file could be loaded")
        # One directory is one machine: its files say which (context.machine), not its folder name.
        names = load.mix(results, load.machine_name)
        if len(names) > 1:
            raise MachinesError(f"{d!r} holds results of {len(names)} machines: {load.describe_mix(names)}; "
                                "give one directory per machine")
        machine = Machine(_name_from(results, d), d, results)
        kernels = load.mix(results, load.kernel_release)
        if len(kernels) > 1:
            machine.warnings.append(f"{d!r} ({machine.name}) mixes kernels: {load.describe_mix(kernels)}; its "
                                    "invocations are pooled as one machine, so a difference is partly the kernels'")
        machines.append(machine)
    names = [m.name for m in machines]
    for m in machines:  # two directories of one machine: tell them apart by directory
        if names.count(m.name) > 1:
            m.name = f"{m.name} ({os.path.basename(os.path.normpath(m.directory))})"
    for i, m in enumerate(machines):
        m.color = COLORS[i % len(COLORS)]
        for r in m.results:
            for p in r.points:
                m.points.setdefault(_key(p), []).append(p)
            for s in r.skipped:
                m.skips.setdefault(s.name, s.reason)
    return machines, errors


def _hex(color):
    return matplotlib.colors.to_hex(color)
