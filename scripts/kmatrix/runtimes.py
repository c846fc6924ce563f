"""Container runtimes in guests (issue 24): --cgroup v2 and --runtime-fidelity.

A cgroup v2 guest carries runc and crun (and containerd's programs when this
machine has them, for a later step) with their libraries, and the static
helper the captures and runtime farms put in each container. --runtime-fidelity
also ships the privileged gtest binary and runs, before the mntscale run, its
fidelity tests for the runtimes named and one `profile capture` per runtime,
whose outputs come back to OUT/guest/LABEL/. Pure parts here are unit-tested
(tests/kmatrix/test_cgroup_v2.py); the boot is tests/kmatrix/boot_cgroup_v2.sh.
"""

import json
import os
import shutil

from . import initramfs as ir

RUNTIMES = ("runc", "crun")
# Shipped when present, not run: a later step runs containerd in the guest.
CONTAINERD = ("containerd", "ctr", "containerd-shim-runc-v2")
# Where the binary's HelperPath() looks first: beside /proc/self/exe.
GUEST_HELPER = "/mntscale/mntscale-mountinfo"
# ../mntscale-mountinfo from here is the helper above, for the gtest's HelperPath().
GUEST_GTEST = "/mntscale/tests/runtime_gtest"
GTEST_NAME = "runtime_gtest"
# The fidelity tests of tests/privileged/runtime_gtest.cc, per runtime.
FIDELITY_FILTER = {
    "runc": ["RuntimeTest.*Runc*", "RuntimeTest.RuntimeFarm*", "RuntimeTest.Parallel*"],
    "crun": ["RuntimeTest.*Crun*"],
}
# The runtime PATH of the guest (stage2's), where the programs are looked for.
SEARCH_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def which(name):
    """The program on this machine, looked for on the usual PATH even when ours lacks sbin."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SEARCH_PATH]))


def parse_runtimes(text):
    """'runc,crun' -> ['runc', 'crun']; ValueError naming the bad entry."""
    names = [n.strip() for n in (text or "").split(",")]
    if not text or any(not n for n in names):
        raise ValueError(f"--runtime-fidelity '{text}': give runtimes separated by commas "
                         f"(known: {', '.join(RUNTIMES)})")
    for n in names:
        if n not in RUNTIMES:
            raise ValueError(f"--runtime-fidelity: unknown runtime '{n}' (known: {', '.join(RUNTIMES)})")
    return list(dict.fromkeys(names))


def gtest_filter(runtimes):
    return ":".join(p for r in runtimes for p in FIDELITY_FILTER[r])


def default_gtest(binary):
    """build/tests/privileged_runtime_gtest beside build/mntscale."""
    return os.path.join(os.path.dirname(binary), "tests", "privileged_runtime_gtest")


def default_helper(binary):
    return os.path.join(os.path.dirname(binary), "mntscale-mountinfo")


def guest_programs(find=which):
    """(host paths of runc, crun and containerd's programs found here, names missing)."""
    found, missing = [], []
    for name in RUNTIMES + CONTAINERD:
        path = find(name)
        if path:
            found.append(path)
        else:
            missing.append(name)
    return found, missing


def steps(runtimes):
    """The guest steps of --runtime-fidelity: the gtest, then a capture per runtime.
    Each writes its output to the guest's out directory (see initramfs.run_script)."""
    out = ir.GUEST_OUT
    s = [(GTEST_NAME, [GUEST_GTEST, f"--gtest_filter={gtest_filter(runtimes)}",
                       f"--gtest_output=json:{out}/{GTEST_NAME}.json"])]
    for r in runtimes:
        s.append((f"capture-{r}", ["/mntscale/mntscale", "profile", "capture", "--runtime", r,
                                   "--out", f"{out}/capture-{r}.json"]))
    return s


def skip_reason(log, test):
    """The message of GTEST_SKIP() for `test` in gtest's console output (the JSON
    output of this gtest version has none): the lines after "Skipped" between the
    test's RUN and SKIPPED lines."""
    lines = log.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("[ RUN      ]") and l.split()[-1] == test)
    except StopIteration:
        return "skipped (no reason in the log)"
    why, on = [], False
    for l in lines[start + 1:]:
        if l.startswith("[  SKIPPED ]") or l.startswith("[       OK ]") or l.startswith("[  FAILED  ]"):
            break
        if on:
            why.append(l.strip())
        elif l.rstrip().endswith("Skipped"):
            on = True
    return " ".join(w for w in why if w) or "skipped (no reason in the log)"


def fidelity_summary(files, runtimes):
    """{'passed': [...], 'failed': [...], 'skipped': {name: why}, 'captures': {rt: {...}},
    'problems': [...]} from the files a --runtime-fidelity guest sent back (pure).

    A problem is anything that makes the fidelity check not a pass: no gtest
    output, a failed test, no test matched, a capture that exited non-zero."""
    out = {"passed": [], "failed": [], "skipped": {}, "captures": {}, "problems": []}
    raw = files.get(f"{GTEST_NAME}.json")
    log = files.get(f"{GTEST_NAME}.log", b"").decode(errors="replace")
    if raw is None:
        exit_code = files.get(f"{GTEST_NAME}.exit", b"?").decode().strip()
        out["problems"].append(f"{GTEST_NAME} wrote no JSON (exit {exit_code})")
    else:
        try:
            doc = json.loads(raw)
        except ValueError as e:
            doc = {}
            out["problems"].append(f"{GTEST_NAME}.json is not JSON: {e}")
        for suite in doc.get("testsuites", []):
            for t in suite.get("testsuite", []):
                name = f"{suite.get('name')}.{t.get('name')}"
                if t.get("failures"):
                    out["failed"].append(name)
                    msg = t["failures"][0].get("failure", "").splitlines()
                    out["problems"].append(f"{name} failed: {msg[0] if msg else '?'}")
                elif t.get("result") == "SKIPPED":
                    out["skipped"][name] = skip_reason(log, name)
                else:
                    out["passed"].append(name)
        if doc and not (out["passed"] or out["failed"] or out["skipped"]):
            out["problems"].append(f"no test matched --gtest_filter={gtest_filter(runtimes)}")
    for r in runtimes:
        code = files.get(f"capture-{r}.exit", b"").decode().strip()
        prof = files.get(f"capture-{r}.json")
        if prof is not None and code == "0":
            cap = json.loads(prof).get("captured", {})
            out["captures"][r] = {"runtime": cap.get("runtime", r), "kernel": cap.get("kernel", ""),
                                  "mount_count": cap.get("mount_count"),
                                  "note": cap.get("note", "")}
        else:
            out["problems"].append(f"capture with {r} " + (f"exited {code}" if code else "did not run"))
    return out


def describe(summary):
    """One line for summary.md."""
    caps = ", ".join(f"{r} {c['mount_count']} mounts" for r, c in summary["captures"].items())
    text = (f"fidelity: {len(summary['passed'])} passed, {len(summary['failed'])} failed, "
            f"{len(summary['skipped'])} skipped; captured: {caps or 'none'}")
    if summary["skipped"]:
        text += "; skipped: " + "; ".join(f"{n} ({w})" for n, w in summary["skipped"].items())
    if summary["problems"]:
        text += "; PROBLEMS: " + "; ".join(summary["problems"])
    return text
