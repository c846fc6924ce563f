#!/usr/bin/env bash
# Installs, idempotently, every Debian package mntscale needs to build, test and
# report. Safe to run again: apt-get skips what is already there, and the
# package-list refresh runs only when a package is actually missing.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git ccache
  libhwloc-dev hwloc libnuma-dev libpfm4-dev
  nlohmann-json3-dev libbenchmark-dev libgtest-dev libgmock-dev libcli11-dev
  python3 python3-matplotlib python3-numpy python3-scipy python3-pytest
  python3-jsonschema python3-hypothesis python3-jinja2 python3-tabulate
  python3-pip python3-setuptools  # tests/reports/test_packaging.py builds reports/ as a package, offline
  python3-flake8  # tests/reports/test_lint.py (.flake8)
  util-linux procps
  chromium  # tests/reports/test_html_chromium.py renders the HTML report headless
  busybox-static cpio file  # tests/kmatrix build and read a guest initramfs
  strace libbenchmark-tools  # compare.py reads results; tests/smoke/bad_input.sh: a refusal makes no namespace, mount or process
  runc crun  # the runtime farm, profile capture and their fidelity tests
  containerd  # --farm containerd, the storm's runtime=containerd (issue 24); its daemon is held back by the policy-rc.d below
  linux-perf  # tests/privileged/waits_gtest.cc checks --waits against perf lock contention
  clang libclang-rt-14-dev   # the sanitizer pass and libFuzzer targets (issue 14)
  stress-ng  # scripts/ab-trials: the CPU-bound neighbour of issue 23's verdict tests
  prometheus-node-exporter prometheus  # tests/smoke/observe_prometheus.sh: node_exporter's textfile collector serves observe's metrics, promtool checks them
)
# The kernel matrix (scripts/kernel-matrix) needs these too; `--with-vm` adds them.
VM_PKGS=(qemu-system-x86 kmod zstd xz-utils)

want=("${PKGS[@]}")
for arg in "$@"; do
  case "$arg" in
    --with-vm) want+=("${VM_PKGS[@]}") ;;
    --with-browser) ;;  # kept for old callers: chromium is in PKGS now
    *) echo "setup.sh: unknown option '$arg' (known: --with-vm, --with-browser)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root to install packages" >&2
  exit 1
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup.sh: all ${#want[@]} packages present"
  exit 0
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Packages that ship a daemon (prometheus, node_exporter) must not start it on
# the machine that runs the tests: a policy-rc.d that says "not now" for the
# length of the install, unless the host has one of its own.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
  trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: done"
