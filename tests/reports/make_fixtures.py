#!/usr/bin/python3
"""Generate the deterministic result-file fixtures used by the report tests.

Run ``/usr/bin/python3 tests/reports/make_fixtures.py`` to rewrite
tests/reports/fixtures/; test_fixtures_are_current checks the committed files
match. Throughput follows the USL with known parameters so fits can be judged:
along containers σ = 1 gives a pure decline 1 / (1 + κ(N−1)).
"""

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
NOISE = 0.01  # relative std of one repetition, like a quiet real host
WINDOWS = 4

MACHINES = {
    "epyc": {"name": "epyc-2s", "cpu": "AMD EPYC 9654", "vendor": "AuthenticAMD", "packages": 2, "numa": 4,
             "cores": 96, "lam": 2.4e6, "kappa_c": 0.01},
    "xeon": {"name": "xeon-2s", "cpu": "Intel Xeon Platinum 8375C", "vendor": "GenuineIntel", "packages": 2,
             "numa": 2, "cores": 64, "lam": 2.0e6, "kappa_c": 0.03},
}
WORKER_USL = {"spread": (0.05, 0.002), "compact": (0.10, 0.005)}  # (σ, κ) along workers


def usl(n, lam, sigma, kappa):
    return lam * n / (1.0 + sigma * (n - 1) + kappa * n * (n - 1))


def context(machine, release, emulated):
    m = MACHINES[machine]
    return {
        "date": "2026-11-27T06:10:00+00:00", "host_name": m["name"], "executable": "/build/mntscale",
        "num_cpus": m["cores"], "mhz_per_cpu": 0, "library_build_type": "release",
        "mntscale_version": "fixture",
        "machine": {"name": m["name"], "virtualized": emulated, "hypervisor": "qemu" if emulated else "none"},
        "kernel": {"release": release, "uname": f"Linux {m['name']} {release}", "emulated": emulated,
                   "accelerator": "tcg" if emulated else "native"},
        "cpu": {"model": m["cpu"], "vendor": m["vendor"]},
        "topology": {"source": "host", "packages": m["packages"], "numa_nodes": m["numa"],
                     "cores": m["cores"], "pus": 2 * m["cores"]},
        "placement": "spread",
        "sysctl": {"fs.mount-max": 100000, "user.max_mnt_namespaces": 96364},
        "mount_hash": {"entries": 65536, "source": "dmesg"},
        "mounts": {"before": 20, "after": 20, "slab_before": 63, "slab_after": 63},
        "rootless": False, "worker_mode": "thread",
        "profile": {"name": "default", "layers": 10, "binds": 3, "depth": 8},
        "config": {"repetitions": 3, "window_seconds": 0.5},
    }


def run_name(scenario, params):
    """Google Benchmark style name; the schema's run_name."""
    keys = [k for k in ("op", "containers", "workers", "placement") if k in params]
    return "/".join([scenario] + [f"{k}:{params[k]}" for k in keys])


def iteration(rng, scenario, params, mean, reps, index, extras):
    """One repetition with noisy throughput, windows and rusage consistent with it."""
    tput = mean * (1.0 + NOISE * rng.standard_normal())
    windows = [round(tput * (1.0 + NOISE * rng.standard_normal()), 1) for _ in range(WINDOWS)]
    workers = params["workers"]
    sys_share = min(0.98, 0.80 + 0.001 * params["containers"])
    name = run_name(scenario, params)
    entry = {
        "name": name, "run_name": name, "run_type": "iteration", "repetitions": reps, "repetition_index": index,
        "threads": workers, "iterations": int(tput * WINDOWS * 0.5),
        "real_time": 1e9 * workers / tput, "cpu_time": 0.97e9 * workers / tput, "time_unit": "ns",
        "items_per_second": round(tput, 1), "scenario": scenario, "params": params,
        "ops_per_sec": round(tput, 1), "ops_per_sec_per_worker": round(tput / workers, 1),
        "window_seconds": 0.5, "windows": windows,
        "user_time_s": round(2.0 * workers * (1 - sys_share), 4), "sys_time_s": round(2.0 * workers * sys_share, 4),
        "workers": [{"worker": w, "pu": w, "core": w, "package": 0, "numa": 0, "container": w % params["containers"],
                     "ops": int(tput / workers)} for w in range(workers)],
    }
    for key, make in extras.items():
        entry[key] = make(entry)
    return entry


def latency(entry):
    p50 = 1e9 * entry["threads"] / entry["items_per_second"]
    return {"p50": round(p50), "p90": round(1.2 * p50), "p99": round(2.5 * p50), "p999": round(9 * p50),
            "max": round(50 * p50), "count": 1000}


def counters(entry):
    return {"task-clock": {"value": 1.0e9, "user": 1.0e8, "kernel": 9.0e8, "scaling": 1.0},
            "cycles": {"unsupported": "no hardware PMU: perf_event_open ENOENT"}}


def attribution(entry):
    copy = min(0.6, 0.1 + 0.004 * entry["params"]["containers"])
    buckets = {"mount_lock": 0.1, "mount_hash": 0.05, "namespace_sem": 0.05, "rcu_wait": 0.05,
               "ns_copy_teardown": copy, "overlay": 0.05, "path_walk": 0.1, "user": 0.1}
    buckets["other_kernel"] = round(1.0 - sum(buckets.values()), 4)
    return {"samples": 1000, "kernel_samples": 900, "mount_pressure_share": round(0.25 + copy, 4),
            "buckets": buckets, "top_symbols": [{"symbol": "copy_tree", "samples": int(1000 * copy)}]}


def point_params(base, sweeps):
    """Unique parameter sets of several sweeps; a point shared by two sweeps is measured once."""
    unique = {}
    for overrides, x_param, xs in sweeps:
        for x in xs:
            params = dict(base, **overrides, **{x_param: x})
            unique.setdefault(run_name("", params), params)
    return list(unique.values())


def measure(rng, scenario, params_list, mean_of, reps, extras=None):
    """All repetitions of every parameter set; ``mean_of(params)`` is the true throughput."""
    return [iteration(rng, scenario, params, mean_of(params), reps, i, extras or {})
            for params in params_list for i in range(reps)]


def skipped_point(scenario, params, reason):
    name = run_name(scenario, params)
    return {"name": name, "run_name": name, "run_type": "iteration", "repetition_index": 0,
            "skipped": reason, "error_occurred": True, "error_message": reason}


def result(ctx, benchmarks):
    return {"schema": "mntscale-result", "schema_version": 1, "complete": True, "context": ctx,
            "benchmarks": benchmarks}


def throughput_model(lam, kappa_c):
    """True mean throughput: USL along workers (per placement) times a decline along containers.

    Normalised so that 2 spread workers at 1 container give ``lam``.
    """
    lam_w = lam / usl(2, 1.0, *WORKER_USL["spread"])

    def mean_of(params):
        along_workers = usl(params["workers"], lam_w, *WORKER_USL[params["placement"]])
        return along_workers * usl(params["containers"], 1.0, 1.0, kappa_c)
    return mean_of


def machine_run(seed, machine, release, emulated, containers, reps, slowdown=1.0, with_workers=True):
    """A full run on one machine: container sweeps of two scenarios, optionally a worker sweep."""
    rng = np.random.default_rng(seed)
    m = MACHINES[machine]
    lam, kappa = m["lam"] / slowdown, m["kappa_c"]
    base = {"op": "stat", "workers": 2, "placement": "spread", "layers": 10, "binds": 3, "depth": 8, "mode": "thread"}
    extras = {"latency_ns": latency} if machine == "epyc" else {}
    extras["counters"] = counters
    walk_sweeps = [({}, "containers", containers)]
    if with_workers:
        walk_sweeps += [({"containers": 10, "placement": pl}, "workers", [1, 2, 4, 8, 16, 32]) for pl in WORKER_USL]
    bench = measure(rng, "path_walk", point_params(base, walk_sweeps), throughput_model(lam, kappa), reps, extras)
    bench += measure(rng, "ns_create", point_params(dict(base, op="unshare"), [({}, "containers", containers)]),
                     throughput_model(lam / 50, 2 * kappa), reps, {"attribution": attribution})
    if emulated:
        bench.append(skipped_point("listmount", dict(base, op="listmount", containers=10),
                                   "unsupported: listmount needs Linux >= 6.8"))
    return result(context(machine, release, emulated), bench)


DRIFT = 0.015  # relative std of an invocation's own level: what repetitions inside it share


def compare_run(seed, factor, drift=DRIFT):
    """One invocation of a small A/B fixture: 6 repetitions per point, mean scaled by ``factor``.

    The whole invocation sits at its own level (``drift``), as real runs do: its
    repetitions share it, so they are not independent samples of the build.
    """
    rng = np.random.default_rng(seed)
    base = {"op": "stat", "workers": 2, "placement": "spread", "layers": 10, "binds": 3, "depth": 8, "mode": "thread"}
    m = MACHINES["epyc"]
    level = factor * (1.0 + drift * rng.standard_normal())
    mean_of = throughput_model(level * m["lam"], m["kappa_c"])
    bench = measure(rng, "path_walk", point_params(base, [({}, "containers", [1, 10, 100])]), mean_of, 6)
    return result(context("epyc", "6.18.44", False), bench)


def compare_side(seed, factor, invocations=5):
    """``invocations`` independent invocations of one build, one file each."""
    return [compare_run(seed * 100 + i, factor) for i in range(invocations)]


def busy_side(seed, factor, inflate):
    """compare_side(seed, factor) measured beside a CPU-bound neighbour: in every invocation
    half the repetitions (indexes 0, 2, 4) are flagged "noisy" as mntscale flags them, and
    their throughput is scaled by ``inflate`` -- the machine's difference between the sides
    (on a 2-vCPU VM the slowed side once measured +31 % "better" that way). The same seeds
    without the neighbour are compare/base (10, 1.0) and compare/slower (12, 0.95)."""
    docs = compare_side(seed, factor)
    for doc in docs:
        for b in doc["benchmarks"]:
            if b.get("repetition_index", 1) % 2 == 0:
                b["items_per_second"] = round(b["items_per_second"] * inflate, 1)
                b["ops_per_sec"] = b["items_per_second"]
                share = 0.45
                b["quietness"] = {"seconds": 2.0, "worker_cpus": 2, "cpu_busy_s": 4.0, "own_run_s": 2.2,
                                  "other_run_s": 1.8, "other_share": share, "steal_s": 0.0, "steal_share": 0.0,
                                  "load_1m": 3.1, "cpus_online": 2}
                b["noisy"] = dict(b["quietness"], reason="other tasks ran 45% of the worker CPUs' time (limit 10%)")
    return docs


def merged_night(docs):
    """Several invocations in one file, each repetition tagged as ci/nightly stores a night."""
    out = dict(docs[0], benchmarks=[])
    for i, d in enumerate(docs):
        out["benchmarks"] += [dict(b, invocation=i) for b in d["benchmarks"]]
    return out


def dump(doc):
    """JSON with one benchmark entry per line: small files, readable diffs."""
    head = json.dumps({k: v for k, v in doc.items() if k != "benchmarks"}, indent=1)
    rows = ",\n".join("  " + json.dumps(b, separators=(",", ":")) for b in doc["benchmarks"])
    return head[:-2] + ',\n "benchmarks": [\n' + rows + "\n ]\n}\n"


DEFAULT_PER_WORKER = {1: 1.43e6, 2: 1.21e6}  # the default run on this machine: 2 workers lose 15% each


def default_run(seed, per_worker=DEFAULT_PER_WORKER, containers=(1, 10, 100, 300), reps=3):
    """Like scripts/run-default.sh: path_walk at 1..300 containers x 1, 2 workers, flat in containers."""
    rng = np.random.default_rng(seed)
    base = {"op": "stat", "placement": "spread", "layers": 10, "binds": 3, "depth": 8, "mode": "thread"}
    params = [dict(base, containers=c, workers=w) for w in per_worker for c in containers]
    bench = measure(rng, "path_walk", params, lambda p: per_worker[p["workers"]] * p["workers"], reps)
    ctx = context("epyc", "6.18.44", False)
    ctx["machine"]["name"] = ctx["host_name"] = "vm"
    return result(ctx, bench)


def _extra(fn):
    """An extras maker that puts scenario-specific numbers in the entry's "extra" object."""
    return {"extra": lambda entry: {k: round(v, 12) for k, v in fn(entry["params"]).items()}}


def _idmap_cost(params):
    """Per-layer idmaps cost one idmapped mount per layer; a parent idmap costs one."""
    return params["layers"] if params["idmap"] == "per-layer" else 1


def facts_run(seed, reps=3):
    """Scenarios with extra metrics for the claim tests (see fixtures/list.json)."""
    rng = np.random.default_rng(seed)
    base = {"workers": 1, "containers": 1, "placement": "spread", "mode": "thread"}
    noisy = lambda v: v * (1.0 + NOISE * rng.standard_normal())  # noqa: E731
    bench = measure(rng, "copy_tree", [dict(base, mounts=m) for m in (100, 500, 1000, 2000)],
                    lambda p: 1.0 / (20e-6 + 1.8e-6 * p["mounts"]), reps,
                    _extra(lambda p: {"seconds_per_op": noisy(20e-6 + 1.8e-6 * p["mounts"])}))
    bench += measure(rng, "churn", [dict(base, op="stat", writer=w, containers=c)
                                    for w in ("none", "churn") for c in (1, 10)],
                     lambda p: 1.0e6 * (0.55 if p["writer"] == "churn" else 1.0), reps)
    bench += measure(rng, "idmap_storm", [dict(base, idmap=i, layers=n) for i in ("parent", "per-layer")
                                          for n in (1, 4, 16)],
                     lambda p: 1e3 / _idmap_cost(p), reps,
                     _extra(lambda p: {"mounts_per_container": p["layers"] + 2,
                                       "seconds_per_container": noisy(1e-3 * _idmap_cost(p))}))
    for entry in bench:  # these scenarios sweep axes run_name() does not name
        entry["name"] = entry["run_name"] = "/".join(
            [entry["scenario"]] + [f"{k}:{v}" for k, v in entry["params"].items() if k not in ("placement", "mode")])
    bench.append(skipped_point("listmount", dict(base, op="listmount"), "unsupported: listmount needs Linux >= 6.8"))
    return result(context("epyc", "6.18.44", False), bench)


def fixtures():
    """Relative path -> file text for every fixture."""
    docs = {
        "report/epyc-6.18.json": machine_run(1, "epyc", "6.18.44", False, [1, 2, 5, 10, 20, 50, 100], 5),
        "report/xeon-6.18.json": machine_run(2, "xeon", "6.18.44", False, [1, 2, 5, 10, 20, 50, 100], 3),
        "report/epyc-6.1-emulated.json": machine_run(3, "epyc", "6.1.0-27-cloud-amd64", True, [1, 5, 20], 1,
                                                     slowdown=20.0, with_workers=False),
        "report/future-version.json": dict(machine_run(4, "xeon", "7.2.0", False, [1, 10], 1), schema_version=99),
        # Two invocations of one build whose levels differ by 4 %: six repetitions each
        # would call that significant if repetitions were the samples.
        "compare/drift-a.json": compare_run(20, 1.0, drift=0.0),
        "compare/drift-b.json": compare_run(21, 0.96, drift=0.0),
        "findings/default-run.json": default_run(30),
        "claims/facts.json": facts_run(31),
    }
    for side, seed, factor in (("base", 10, 1.0), ("same", 11, 1.0), ("slower", 12, 0.95)):
        for i, doc in enumerate(compare_side(seed, factor)):
            docs[f"compare/{side}/invocation-{i + 1}.json"] = doc
    docs["compare/night-slower.json"] = merged_night(compare_side(12, 0.95))
    # Issue 23: base and slower again, half of every invocation's repetitions noisy.
    for side, seed, factor, inflate in (("base", 10, 1.0, 1.0), ("slower", 12, 0.95, 1.3)):
        for i, doc in enumerate(busy_side(seed, factor, inflate)):
            docs[f"busy/{side}/invocation-{i + 1}.json"] = doc
    texts = {path: dump(doc) for path, doc in docs.items()}
    whole = texts["report/xeon-6.18.json"]
    texts["report/malformed.json"] = whole[: len(whole) // 2]  # a run killed mid-write
    return texts


def write(root=FIXTURES):
    for rel, text in fixtures().items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else FIXTURES)
