"""scripts/kernel-matrix: the same mntscale run on several kernels, one report.

  kernel-matrix [options] KERNEL...                    matrix: one result per kernel
  kernel-matrix [options] --baseline K1 --candidate K2 A/B: interleaved rounds + compare
  kernel-matrix [options] --baseline K1 --candidate K2 --budget S [--resolution R]
                                                       A/B run until decided (reports' adaptive loop)

KERNEL: `native`, a Debian package name / glob / meta-package, or IMAGE[:MODULES_DIR]
(see kmatrix/kernels.py).
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

from . import accel as accel_mod
from . import initramfs as ir
from . import kernels as kmod
from . import runtimes as rt_mod
from . import topology as topo_mod
from . import vm

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT = os.path.join(SOURCE_DIR, "reports", "mntscale_report.py")
# scripts/mntscale_reports is a symbolic link to reports/mntscale_reports (docs/reports.md).
from mntscale_reports import adaptive, attribution_diff, compare, load  # noqa: E402
from mntscale_reports.tables import pipe_table  # noqa: E402
PYTHON = "/usr/bin/python3"
TMP_PREFIX = "kmatrix-"


# The preset a matrix runs when none is named: it must exist in presets/ (a test checks).
DEFAULT_PRESET = "nightly-v2"

def tmp_prefix(what=""):
    return f"{TMP_PREFIX}{os.getpid()}-{what}"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


@dataclass
class KernelRun:
    spec: str
    label: str
    kind: str  # native | vm
    ok: bool = False
    reason: str = ""
    release: str = ""
    expected_release: str = ""
    accelerator: str = ""
    source: str = ""
    seconds: float = 0.0
    result: str = ""  # path of the result JSON
    console: str = ""  # path of the console log
    console_tail: str = ""
    notes: list = field(default_factory=list)
    measured: int = 0
    skipped: dict = field(default_factory=dict)  # run_name -> reason
    cgroups: dict = field(default_factory=dict)  # --cgroup: what the guest mounted (vm.parse_console)
    guest_files: dict = field(default_factory=dict)  # name -> path of each file the guest sent back
    fidelity: dict = field(default_factory=dict)  # --runtime-fidelity: runtimes.fidelity_summary


# --- the run inside a guest or on this machine -------------------------------------------------

def find_preset(spec, source_dir):
    for cand in (spec, os.path.join(source_dir, "presets", spec),
                 os.path.join(source_dir, "presets", spec + ".json")):
        if os.path.isfile(cand):
            return cand
    return None


def binary_scenarios(binary):
    """The scenarios a build has, from `mntscale list --json` (its machine-readable surface)."""
    r = subprocess.run([binary, "list", "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"kernel-matrix: {binary} list --json exited {r.returncode}: {r.stderr.strip()}")
    return {s["name"] for s in json.loads(r.stdout)["scenarios"]}


def prepare_preset(opts):
    """The preset as the binary can run it: scenarios it does not have are dropped (and noted).

    A preset naming a scenario the binary lacks is a usage error for mntscale; the
    matrix should still run the rest, on every kernel alike. The filtered copy is
    written to OUT/preset.json, which the guests get at the same path.
    """
    opts.preset_note = ""
    if not opts.preset:
        return
    path = find_preset(opts.preset, opts.source_dir)
    if path is None:
        return  # let mntscale resolve (and report) it
    with open(path) as f:
        doc = json.load(f)
    have = binary_scenarios(opts.binary)
    drop = [x["scenario"] for x in doc.get("scenarios", []) if x.get("scenario") not in have]
    doc["scenarios"] = [x for x in doc.get("scenarios", []) if x.get("scenario") in have]
    if drop:
        opts.preset_note = f"not in this mntscale build, left out: {', '.join(drop)}"
        log(f"kernel-matrix: preset {doc.get('name')}: {opts.preset_note}")
    out = os.path.join(opts.out, "preset.json")
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
    opts.preset = out


GUEST_PRESET = "/kmatrix/preset.json"  # not under /tmp: the guest mounts a tmpfs there


def mntscale_args(opts, guest=False):
    args = []
    if opts.preset:
        on_file = guest and os.path.isfile(opts.preset)
        args += ["--preset", GUEST_PRESET if on_file else opts.preset]
    args += shlex.split(opts.run_args or "")
    args += ["--quiet"] if opts.quiet_guest else []
    return args


def default_binary():
    env = os.environ.get("MNTSCALE_BINARY")
    if env:
        return env
    return os.path.join(SOURCE_DIR, "build", "mntscale")


def summarize_result(run, path):
    """Fill release / accelerator / measured and skipped points from a result file."""
    with open(path) as f:
        doc = json.load(f)
    k = doc.get("context", {}).get("kernel", {})
    run.release = k.get("release", "")
    run.accelerator = k.get("accelerator", "")
    if doc.get("complete") is False:
        run.notes.append(f"result incomplete: {doc.get('incomplete_reason', '?')}")
    for b in doc.get("benchmarks", []):
        if b.get("run_type") != "iteration":
            continue
        if "skipped" in b:
            run.skipped[b.get("run_name") or b.get("name")] = b["skipped"]
        elif b.get("repetition_index", 0) == 0:
            run.measured += 1
    if run.expected_release and run.release and run.release != run.expected_release:
        run.notes.append(f"booted {run.release}, expected {run.expected_release}")


def run_native(kernel, opts, out_path, console_path):
    run = KernelRun(kernel.spec, kernel.label, "native", expected_release=kernel.release,
                    source=kernel.source, console=console_path)
    env = dict(os.environ)
    env.pop("MNTSCALE_ACCELERATOR", None)  # native: the binary's own default
    if opts.machine:
        env["MNTSCALE_MACHINE"] = opts.machine
    argv = [opts.binary, "run", *mntscale_args(opts), "--out", out_path]
    log(f"kernel-matrix: [{kernel.label}] native: {' '.join(shlex.quote(a) for a in argv)}")
    start = time.monotonic()
    with open(console_path, "wb") as con:
        p = vm.spawn(argv, stdin=subprocess.DEVNULL, stdout=con, stderr=subprocess.STDOUT, env=env)
        try:
            p.wait(timeout=opts.timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = None
        vm.kill(p)
    run.seconds = time.monotonic() - start
    with open(console_path, errors="replace") as f:
        text = f.read()
    if rc is None:
        run.reason = f"timed out after {opts.timeout:.0f}s"
    elif os.path.exists(out_path) and os.path.getsize(out_path) > 0:
        run.ok = True
        if rc != 0:
            run.notes.append(f"mntscale exited {rc}; its partial result is kept")
    else:
        run.reason = f"mntscale exited {rc} without a result file"
    if run.ok:
        run.result = out_path
        summarize_result(run, out_path)
    else:
        run.console_tail = vm.console_tail(text)
    return run


def guest_cmdline(opts):
    """--append, and what --cgroup needs on the guest kernel's command line."""
    cg = getattr(opts, "cgroup", None)
    return " ".join(x for x in (getattr(opts, "append", "") or "",
                                ir.CGROUP_CMDLINE.get(cg, "") if cg else "") if x)


def guest_payload(opts):
    """(programs, ship, steps) of build_guest for --cgroup and --runtime-fidelity."""
    programs, ship, steps = [], {}, []
    if getattr(opts, "cgroup", None) or getattr(opts, "fidelity", None):
        programs = list(opts.programs)
        ship[rt_mod.GUEST_HELPER] = opts.helper
    if getattr(opts, "fidelity", None):
        ship[rt_mod.GUEST_GTEST] = opts.gtest_binary
        steps = rt_mod.steps(opts.fidelity)
    return programs, ship, steps


def build_image(kernel, opts, accelerator, workdir):
    programs, ship, steps = guest_payload(opts)
    img = ir.build_guest(opts.binary, kernel.modules_dir, mntscale_args(opts, guest=True), accelerator,
                         opts.vm_machine, want_modules=opts.modules, need_fs=opts.need_fs,
                         busybox=opts.busybox, cgroup=getattr(opts, "cgroup", None),
                         programs=programs, ship=ship, steps=steps)
    # presets/, profiles/ and the OCI specs in profiles/specs/ resolve against the
    # source dir compiled into the binary: the same absolute path exists in the guest.
    for sub in ("presets", "profiles", os.path.join("profiles", "specs")):
        d = os.path.join(opts.source_dir, sub)
        if os.path.isdir(d):
            for f in sorted(os.listdir(d)):
                if f.endswith(".json"):
                    img.archive.add_host_file(os.path.join(d, f).lstrip("/"), os.path.join(d, f), 0o644)
    if opts.preset and os.path.isfile(opts.preset):
        img.archive.add_host_file(GUEST_PRESET, opts.preset, 0o644)
    path = os.path.join(workdir, f"{kernel.label}.initrd.gz")
    img.archive.write_gzip(path)
    return img, path


def run_vm(kernel, opts, accelerator, cpu_model, out_path, console_path, image=None):
    """Boot one kernel with its image (built here unless given) and keep its result."""
    run = KernelRun(kernel.spec, kernel.label, "vm", expected_release=kernel.release,
                    accelerator=accelerator, source=kernel.source, console=console_path)
    start = time.monotonic()
    workdir = None
    try:
        if image is None:
            workdir = tempfile.mkdtemp(prefix=tmp_prefix("img-"), dir=opts.tmpdir)
            img, image = build_image(kernel, opts, accelerator, workdir)
            if img.missing_modules:
                run.notes.append("no module file for: " + ", ".join(img.missing_modules)
                                 + " (built in, or absent: the guest checks /proc/filesystems)")
        log(f"kernel-matrix: [{kernel.label}] booting under {accelerator} ({opts.topology.describe()}), "
            f"timeout {opts.timeout:.0f}s")
        br = vm.boot(kernel.image, image, accelerator, opts.topology, opts.timeout,
                     console_path=console_path, cpu=cpu_model, cmdline_extra=guest_cmdline(opts))
        outcome = vm.parse_console(br.console, br.timed_out, opts.timeout)
        run.notes += outcome.notes
        keep_guest_outputs(run, opts, outcome, out_path)
        if outcome.ok:
            with open(out_path + ".tmp", "wb") as f:
                f.write(outcome.payload)
            os.replace(out_path + ".tmp", out_path)
            run.ok, run.result = True, out_path
            summarize_result(run, out_path)
        else:
            run.reason = outcome.reason
            if not outcome.release and br.exit_code not in (0, None):
                last = vm.console_tail(br.console, 1)
                run.reason = f"qemu exited {br.exit_code}" + (f": {last}" if last else "")
            run.release = outcome.release
            run.console_tail = vm.console_tail(br.console)
    except (ir.ImageError, OSError) as e:
        run.reason = f"image: {e}"
    finally:
        if workdir and not opts.keep_images:
            shutil.rmtree(workdir, ignore_errors=True)
    run.seconds = time.monotonic() - start
    return run


def keep_guest_outputs(run, opts, outcome, out_path):
    """The guest's extra files beside its result (RESULT.guest/), its cgroup
    mounts, and the fidelity verdict of --runtime-fidelity."""
    run.cgroups = outcome.cgroups
    if outcome.files:
        d = out_path[:-len(".json")] + ".guest" if out_path.endswith(".json") else out_path + ".guest"
        os.makedirs(d, exist_ok=True)
        for name, data in sorted(outcome.files.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            run.guest_files[name] = os.path.join(d, name)
    if getattr(opts, "cgroup", None) and outcome.release and not outcome.cgroups and not outcome.reason:
        run.notes.append(f"the guest did not report its cgroup mounts (--cgroup {opts.cgroup})")
    if getattr(opts, "fidelity", None) and outcome.release:
        run.fidelity = rt_mod.fidelity_summary(outcome.files, opts.fidelity)
        run.notes.append(rt_mod.describe(run.fidelity))


def checks_failed(runs):
    """Runs whose result came back but whose guest checks (fidelity) did not pass."""
    return [r for r in runs if r.fidelity and r.fidelity.get("problems")]


# --- accelerator -------------------------------------------------------------------------------

def choose_accelerator(kernel, opts):
    """(accelerator, cpu model, reason). Forced by --accel, else the timed probe."""
    if opts.accel in ("kvm", "tcg"):
        return opts.accel, None, f"forced by --accel {opts.accel}"
    workdir = tempfile.mkdtemp(prefix=tmp_prefix("probe-"), dir=opts.tmpdir)
    try:
        probe = os.path.join(workdir, "probe.initrd.gz")
        ir.build_probe(opts.busybox).write_gzip(probe)
        small = topo_mod.make(min(2, opts.topology.cpus), 512)
        br = vm.boot(kernel.image, probe, "tcg", small, opts.probe_timeout, stop_marker=ir.PROBE)
        tcg = accel_mod.ProbeResult("tcg", br.marker_seconds,
                                    "" if br.marker_seconds else _probe_note(br, opts.probe_timeout))
        log(f"kernel-matrix: probe tcg: {tcg.seconds if tcg.seconds is not None else tcg.note}")
        kvm, kvm_cpu = None, None
        if os.access("/dev/kvm", os.R_OK | os.W_OK):
            limit = accel_mod.kvm_timeout(tcg.seconds or opts.probe_timeout)
            notes = []
            for cpu in ("host", "qemu64"):  # host first; some nested setups reject its MSRs
                br = vm.boot(kernel.image, probe, "kvm", small, limit, stop_marker=ir.PROBE, cpu=cpu)
                if br.marker_seconds is not None:
                    kvm, kvm_cpu = accel_mod.ProbeResult("kvm", br.marker_seconds, f"-cpu {cpu}"), cpu
                    break
                notes.append(f"-cpu {cpu}: {_probe_note(br, limit)}")
            if kvm is None:
                kvm = accel_mod.ProbeResult("kvm", None, "; ".join(notes))
            log(f"kernel-matrix: probe kvm: {kvm.seconds if kvm.seconds is not None else kvm.note}")
        choice, why = accel_mod.decide(tcg, kvm)
        return choice, (kvm_cpu if choice == "kvm" else None), why
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _probe_note(br, limit):
    if br.timed_out:
        return f"no marker within {limit:.1f}s (killed)"
    last = vm.console_tail(br.console, 2).replace("\n", " | ")
    return f"qemu exited {br.exit_code} before the marker: {last[-200:]}"


# --- reports -----------------------------------------------------------------------------------

def scenario_table(runs):
    """Markdown: per point, each kernel's mean throughput or its skip reason."""
    cols = [r for r in runs if r.ok]
    if not cols:
        return ""
    cells, order = {}, []
    for r in cols:
        with open(r.result) as f:
            doc = json.load(f)
        per = {}
        for b in doc.get("benchmarks", []):
            if b.get("run_type") != "iteration":
                continue
            name = b.get("run_name") or b.get("name")
            if name not in order:
                order.append(name)
            if "skipped" in b:
                per[name] = "skipped: " + b["skipped"]
            elif "items_per_second" in b:
                per.setdefault(name, []).append(b["items_per_second"])
        for name, v in per.items():
            cells[(name, r.label)] = v if isinstance(v, str) else _si(sum(v) / len(v))
    return pipe_table(["point"] + [f"{r.label} ({r.accelerator or 'native'})" for r in cols],
                      [[name] + [cells.get((name, r.label), "—") for r in cols] for name in order])


def attribution_section(runs):
    """Markdown: for points run with --attribute, why each kernel differs from
    the first one (reports/mntscale_reports/attribution_diff.py)."""
    sides = []
    for r in runs:
        if r.ok and r.result:
            with open(r.result) as f:
                sides.append((r.label, json.load(f)))
    return attribution_diff.section(sides)


def _si(v):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def write_summary(outdir, runs, extra):
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump({**extra, "kernels": [asdict(r) for r in runs]}, f, indent=2)
    lines = ["# Kernel matrix", ""]
    for k, v in extra.items():
        lines.append(f"- {k}: {v}")
    rows = []
    for r in runs:
        acc = r.accelerator or ("native" if r.kind == "native" else "")
        if acc == "tcg":
            acc = "tcg (emulated)"
        status = "ok" if r.ok else "FAILED: " + r.reason
        rows.append([r.label, r.release or r.expected_release, acc, status, f"{r.seconds:.0f}s", str(r.measured),
                     str(len(r.skipped))])
    lines += ["", pipe_table(["kernel", "release", "accelerator", "status", "time", "points", "skipped"], rows)]
    for r in runs:
        if r.cgroups:
            lines += ["", f"{r.label} cgroups: " + "; ".join(f"{k} {','.join(v)}" for k, v in r.cgroups.items())]
    for r in runs:
        if r.notes:
            lines += ["", f"{r.label}: " + "; ".join(r.notes)]
        if r.skipped:
            lines += ["", f"Skipped on {r.label}:"] + [f"- {n}: {why}" for n, why in r.skipped.items()]
        if not r.ok:
            lines += ["", f"## {r.label} failed: {r.reason}"]
            if r.console_tail:
                lines += ["", f"Console ({r.console}), last lines:", "", "```", r.console_tail, "```"]
    table = scenario_table(runs)
    if table:
        lines += ["", "## Throughput per point (mean items/s; TCG numbers are emulated)", "", table]
    why = attribution_section(runs)
    if why:
        lines += ["", why]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write(text)
    return text


def make_report(outdir, files):
    if not files:
        return None
    rdir = os.path.join(outdir, "report")
    r = subprocess.run([PYTHON, REPORT, "report", rdir, *files], capture_output=True, text=True)
    if r.returncode != 0:
        log(f"kernel-matrix: report failed ({r.returncode}): {r.stderr.strip()[-800:]}")
        return None
    return os.path.join(rdir, "index.html")


# --- drivers -----------------------------------------------------------------------------------

def resolve_all(specs, opts):
    """[Kernel or KernelRun (a failure)] in the order given."""
    items, seen = [], {}
    for spec in specs:
        try:
            k = kmod.resolve(spec, opts.cache, log=log)
        except (kmod.KernelError, OSError) as e:
            items.append(KernelRun(spec, kmod.safe_label(spec), "vm", reason=f"kernel: {e}"))
            continue
        n = seen.get(k.label, 0)  # two specs naming one kernel must not share files
        seen[k.label] = n + 1
        if n:
            k.label = f"{k.label}-{n + 1}"
        items.append(k)
    return items


def accelerator_for(kernels, opts):
    vms = [k for k in kernels if not k.native]
    if not vms:
        return None, None, "no VM kernels"
    acc, cpu, why = choose_accelerator(vms[0], opts)
    log(f"kernel-matrix: accelerator {acc}: {why}")
    return acc, cpu, why


def matrix(opts):
    t0 = time.monotonic()
    os.makedirs(os.path.join(opts.out, "results"), exist_ok=True)
    os.makedirs(os.path.join(opts.out, "console"), exist_ok=True)
    items = resolve_all(opts.kernels, opts)
    kernels = [k for k in items if isinstance(k, kmod.Kernel)]
    acc, cpu, why = accelerator_for(kernels, opts) if kernels else (None, None, "")
    runs = []
    for k in items:
        if isinstance(k, KernelRun):
            runs.append(k)
            continue
        out = os.path.join(opts.out, "results", f"{k.label}.json")
        con = os.path.join(opts.out, "console", f"{k.label}.log")
        run = run_native(k, opts, out, con) if k.native else run_vm(k, opts, acc, cpu, out, con)
        log(f"kernel-matrix: [{k.label}] " + (f"ok in {run.seconds:.0f}s: {run.measured} points, "
                                              f"{len(run.skipped)} skipped" if run.ok else
                                              f"FAILED after {run.seconds:.0f}s: {run.reason}"))
        runs.append(run)
    html = make_report(opts.out, [r.result for r in runs if r.ok])
    extra = {"accelerator": f"{acc} ({why})" if acc else "none (no VM kernels)",
             "guest": opts.topology.describe(), "run": " ".join(mntscale_args(opts)),
             "binary": opts.binary, "report": html or "not made (no results)",
             **({"preset": opts.preset_note} if opts.preset_note else {}),
             "wall_seconds": round(time.monotonic() - t0, 1)}
    if getattr(opts, "cgroup", None):
        extra["cgroup"] = f"{opts.cgroup}: cgroup2 alone at /sys/fs/cgroup ({ir.CGROUP_CMDLINE[opts.cgroup]})"
    if getattr(opts, "fidelity", None):
        extra["runtime fidelity"] = (f"{', '.join(opts.fidelity)}: {rt_mod.GTEST_NAME} "
                                     f"--gtest_filter={rt_mod.gtest_filter(opts.fidelity)}")
    text = write_summary(opts.out, runs, extra)
    print(text)
    for r in checks_failed(runs):
        log(f"kernel-matrix: [{r.label}] guest checks failed: " + "; ".join(r.fidelity["problems"]))
    return 0 if runs and all(r.ok for r in runs) and not checks_failed(runs) else 1


def ab(opts):
    t0 = time.monotonic()
    base_dir = os.path.join(opts.out, "baseline")
    cand_dir = os.path.join(opts.out, "candidate")
    for d in (base_dir, cand_dir, os.path.join(opts.out, "console")):
        os.makedirs(d, exist_ok=True)
    kernels = resolve_all([opts.baseline, opts.candidate], opts)
    failed = [k for k in kernels if isinstance(k, KernelRun)]
    if failed:
        write_summary(opts.out, failed, {"mode": "A/B"})
        for r in failed:
            log(f"kernel-matrix: {r.spec}: {r.reason}")
        return 2
    a, b = kernels
    if not opts.budget and opts.rounds < 4:
        log(f"kernel-matrix: {opts.rounds} rounds: compare needs 4 invocations per side for a verdict, "
            "so every point will be inconclusive")
    acc, cpu, why = accelerator_for(kernels, opts)
    workdir = tempfile.mkdtemp(prefix=tmp_prefix("ab-"), dir=opts.tmpdir)
    images = {}
    runs = []
    outcome = None

    def one(side, i):
        """One invocation of one side's kernel: the result's path, or None when it failed."""
        k, d = (a, base_dir) if side == "A" else (b, cand_dir)
        out = os.path.join(d, f"round-{i + 1:02d}.json")
        con = os.path.join(opts.out, "console", f"{side}-{k.label}-round-{i + 1:02d}.log")
        log(f"kernel-matrix: round {i + 1} {side} = {k.label}")
        r = (run_native(k, opts, out, con) if k.native
             else run_vm(k, opts, acc, cpu, out, con, image=images[k.label]))
        r.label = f"{side}{i + 1}-{k.label}"
        runs.append(r)
        if not r.ok:
            log(f"kernel-matrix: {r.label} FAILED: {r.reason}")
            return None
        return out

    try:
        for k in (a, b):
            if not k.native:
                img, path = build_image(k, opts, acc, workdir)
                images[k.label] = path
        if opts.budget:
            outcome = adaptive.run(_adaptive_measure(one), opts.settings, log=log)
        else:
            for i in range(opts.rounds):
                for side in ("A", "B"):
                    one(side, i)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if outcome is not None:
        return _ab_until_decided(opts, a, b, acc, why, runs, outcome, t0)
    cmp_dir = os.path.join(opts.out, "compare")
    argv = [PYTHON, REPORT, "compare", base_dir, cand_dir, "--out", cmp_dir,
            "--threshold", str(opts.threshold)]
    c = subprocess.run(argv, capture_output=True, text=True)
    html = make_report(opts.out, [r.result for r in runs if r.ok])
    extra = {"mode": f"A/B: baseline {a.label}, candidate {b.label}, {opts.rounds} interleaved rounds",
             "accelerator": f"{acc} ({why})" if acc else "native",
             "guest": opts.topology.describe(), "run": " ".join(mntscale_args(opts)),
             "compare": f"{cmp_dir}/compare.md (exit {c.returncode})", "report": html or "not made",
             "wall_seconds": round(time.monotonic() - t0, 1)}
    write_summary(opts.out, runs, extra)
    print(c.stdout)
    if c.returncode == 2:
        log(f"kernel-matrix: compare: {c.stderr.strip()[-800:]}")
    return c.returncode


def _adaptive_measure(one):
    """adaptive.run's measure(): one guest (or native) run of a side; a failed run stops the loop."""
    def measure(side, k, _only):
        out = one(side, k)
        if out is None:
            raise RuntimeError(f"{side} round {k + 1} failed")
        try:
            return [load.load_file(out)]
        except load.LoadError as e:
            raise RuntimeError(str(e)) from e
    return measure


def _ab_until_decided(opts, a, b, acc, why, runs, outcome, t0):
    """Writes the run-until-decided A/B's ab.md / ab.json and compare/; exit as `ab`'s."""
    text = adaptive.summary(outcome)
    cmp_dir = os.path.join(opts.out, "compare")
    os.makedirs(cmp_dir, exist_ok=True)
    with open(os.path.join(opts.out, "ab.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(opts.out, "ab.json"), "w", encoding="utf-8") as f:
        json.dump(adaptive.to_json(outcome), f, indent=1)
    if outcome.comparison is not None:
        with open(os.path.join(cmp_dir, "compare.md"), "w", encoding="utf-8") as f:
            f.write(compare.to_markdown(outcome.comparison))
    html = make_report(opts.out, [r.result for r in runs if r.ok])
    extra = {"mode": f"A/B until decided: baseline {a.label}, candidate {b.label}, {outcome.pairs} pairs "
                     f"(stopped: {outcome.stopped})",
             "accelerator": f"{acc} ({why})" if acc else "native",
             "guest": opts.topology.describe(), "run": " ".join(mntscale_args(opts)),
             "compare": f"{opts.out}/ab.md (exit {outcome.exit_code})", "report": html or "not made",
             "wall_seconds": round(time.monotonic() - t0, 1)}
    write_summary(opts.out, runs, extra)
    print(text)
    return outcome.exit_code


# --- command line -------------------------------------------------------------------------------

def parse(argv):
    p = argparse.ArgumentParser(prog="kernel-matrix", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kernels", nargs="*", help="native | Debian package (glob, meta) | IMAGE[:MODULES_DIR]")
    p.add_argument("--baseline", help="A/B: the baseline kernel (A)")
    p.add_argument("--candidate", help="A/B: the candidate kernel (B)")
    p.add_argument("--rounds", type=int, default=5, help="A/B: interleaved A B rounds, one invocation per side each; "
                   "compare needs >= 4 (default 5)")
    p.add_argument("--threshold", type=float, default=5.0, help="A/B: compare's gate, percent")
    p.add_argument("--budget", type=float, default=0,
                   help="A/B: seconds; run until decided (interleaved pairs until every point is decided or "
                        "within --resolution) instead of a fixed --rounds (default 0: --rounds)")
    p.add_argument("--resolution", type=float, default=1.0, help="A/B with --budget: target CI half-width, percent")
    p.add_argument("--max-invocations", type=int, default=48, help="A/B with --budget: per side at most")
    p.add_argument("--preset", default=None,
                   help=f"mntscale preset to run (presets/NAME); default '{DEFAULT_PRESET}' unless --run-args")
    p.add_argument("--append", default="",
                   help="extra kernel command-line arguments for each guest, e.g. mitigations=off")
    p.add_argument("--run-args", default="", help="extra `mntscale run` arguments, one shell-quoted string")
    p.add_argument("--out", default=None, help="output directory (default ./kernel-matrix-DATE)")
    p.add_argument("--binary", default=None, help="mntscale binary (default $MNTSCALE_BINARY or build/mntscale)")
    p.add_argument("--cache", default=kmod.DEFAULT_CACHE, help="downloaded kernels (default %(default)s)")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--memory", type=int, default=2048, help="guest MiB")
    p.add_argument("--numa", type=int, default=0, help="emulated NUMA nodes (vCPUs and memory split evenly)")
    p.add_argument("--sockets", type=int, default=1)
    p.add_argument("--topology", dest="topology_file", default=None,
                   help="guest layout: JSON, or an hwloc synthetic file / name in topologies/")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per VM (and per native run)")
    p.add_argument("--probe-timeout", type=float, default=90, help="seconds for the TCG probe boot")
    p.add_argument("--machine", default=None, help="MNTSCALE_MACHINE for native runs")
    p.add_argument("--vm-machine", default=None, help="MNTSCALE_MACHINE in guests (default HOST-vm)")
    p.add_argument("--module", dest="modules", action="append", default=None,
                   help="kernel module to load in the guest (default: overlay)")
    p.add_argument("--busybox", default="/bin/busybox")
    p.add_argument("--keep-images", action="store_true")
    p.add_argument("--tmpdir", default=None)
    p.add_argument("--quiet-guest", action="store_true", help="pass --quiet to mntscale")
    p.add_argument("--cgroup", default=None,
                   help="guest cgroup layout: v2 = the unified hierarchy alone (cgroup2 at /sys/fs/cgroup, "
                        "cgroup_no_v1=all, controllers enabled for children), with runc, crun and "
                        "containerd's programs in the guest (default: no cgroup mounted)")
    p.add_argument("--runtime-fidelity", dest="fidelity_arg", default=None, metavar="RUNTIMES",
                   help="runc,crun: before the run, the guest runs the runtime fidelity tests "
                        "(privileged_runtime_gtest) and a `profile capture` for each; outputs in "
                        "OUT/results/LABEL.guest/")
    p.add_argument("--gtest-binary", default=None,
                   help="the runtime gtest for --runtime-fidelity (default: tests/privileged_runtime_gtest "
                        "beside the mntscale binary)")
    o = p.parse_args(argv)
    if bool(o.baseline) != bool(o.candidate):
        p.error("--baseline and --candidate go together")
    if o.baseline and o.kernels:
        p.error("give kernels either as a list (matrix) or as --baseline/--candidate (A/B)")
    if not o.baseline and not o.kernels:
        p.error("no kernels given")
    if o.budget and not o.baseline:
        p.error("--budget runs an A/B until decided: give --baseline and --candidate")
    if o.budget:
        try:
            o.settings = adaptive.Settings(resolution=o.resolution, budget=o.budget,
                                           max_invocations=o.max_invocations, threshold=o.threshold)
        except ValueError as e:
            p.error(str(e))
    if o.preset is None and not o.run_args:
        o.preset = DEFAULT_PRESET
    o.binary = os.path.abspath(o.binary or default_binary())
    if not os.access(o.binary, os.X_OK):
        p.error(f"mntscale binary {o.binary} not found (build it, or --binary / $MNTSCALE_BINARY)")
    o.source_dir = SOURCE_DIR
    check_runtime_options(p, o)
    o.modules = o.modules or ["overlay"]
    o.need_fs = ["overlay", "tmpfs"]
    o.vm_machine = o.vm_machine or f"{os.uname().nodename}-vm"
    o.out = os.path.abspath(o.out or time.strftime("kernel-matrix-%Y%m%d-%H%M%S"))
    try:
        if o.topology_file:
            o.topology = topo_mod.load(topo_mod.find(o.topology_file, SOURCE_DIR), o.memory)
        else:
            o.topology = topo_mod.make(o.cpus, o.memory, o.numa, o.sockets)
    except (topo_mod.TopologyError, OSError, ValueError) as e:
        p.error(str(e))
    return o


def check_runtime_options(p, o, find=rt_mod.which):
    """--cgroup and --runtime-fidelity: refused (exit 2, p.error) before anything is
    built when the value is unknown, a kernel is `native`, or what the guest needs
    is not on this machine. Sets o.cgroup, o.fidelity, o.programs, o.helper, o.gtest_binary."""
    o.fidelity, o.programs, o.helper = [], [], None
    if o.cgroup is not None and o.cgroup not in ir.CGROUP_MODES:
        p.error(f"--cgroup '{o.cgroup}': not a guest cgroup layout kernel-matrix builds (known: "
                f"{', '.join(ir.CGROUP_MODES)}: the unified hierarchy alone); leave --cgroup out for "
                "the guest's default (no cgroup mounted)")
    if o.fidelity_arg is not None:
        try:
            o.fidelity = rt_mod.parse_runtimes(o.fidelity_arg)
        except ValueError as e:
            p.error(str(e))
    if o.gtest_binary and not o.fidelity:
        p.error("--gtest-binary is the test --runtime-fidelity runs: give --runtime-fidelity too")
    if not (o.cgroup or o.fidelity):
        return
    what = f"--cgroup {o.cgroup}" if o.cgroup else "--runtime-fidelity"
    if "native" in (o.kernels or []) or "native" in (o.baseline, o.candidate):
        p.error(f"{what} sets up a guest; `native` runs on this machine's own cgroups and runtimes")
    o.programs, missing = rt_mod.guest_programs(find)
    absent = [r for r in rt_mod.RUNTIMES if r in missing]
    if len(absent) == len(rt_mod.RUNTIMES):
        p.error(f"{what}: neither runc nor crun is installed here (scripts/setup.sh installs them)")
    for r in o.fidelity:
        if r in absent:
            p.error(f"--runtime-fidelity {r}: {r} is not installed here (scripts/setup.sh installs it)")
    o.helper = rt_mod.default_helper(o.binary)
    if not os.access(o.helper, os.X_OK):
        p.error(f"{what}: the static helper {o.helper} is missing (cmake --build build --target "
                "mntscale-mountinfo); runtimes run it in every container")
    if o.fidelity:
        o.gtest_binary = os.path.abspath(o.gtest_binary or rt_mod.default_gtest(o.binary))
        if not os.access(o.gtest_binary, os.X_OK):
            p.error(f"--runtime-fidelity: {o.gtest_binary} not found (cmake --build build --target "
                    "privileged_runtime_gtest, or --gtest-binary)")


def sweep_stale_tmp(tmpdir):
    """Remove image dirs left by a kernel-matrix that was SIGKILLed (its pid is in the name)."""
    base = tmpdir or tempfile.gettempdir()
    for d in os.listdir(base):
        parts = d.split("-")
        if d.startswith(TMP_PREFIX) and len(parts) > 2 and parts[1].isdigit():
            if not os.path.exists(f"/proc/{parts[1]}"):
                shutil.rmtree(os.path.join(base, d), ignore_errors=True)


def main(argv=None):
    opts = parse(sys.argv[1:] if argv is None else argv)
    vm.install_cleanup()
    sweep_stale_tmp(opts.tmpdir)
    os.makedirs(opts.out, exist_ok=True)
    log(f"kernel-matrix: output in {opts.out}")
    prepare_preset(opts)
    try:
        return ab(opts) if opts.baseline else matrix(opts)
    except KeyboardInterrupt:
        log("kernel-matrix: interrupted; every VM killed")
        return 130
    finally:
        vm.kill_all()
