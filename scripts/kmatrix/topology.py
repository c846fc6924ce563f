"""Guest CPU / memory / NUMA layout and the qemu options that make it.

From options (--cpus 4 --memory 4096 --numa 2) or a topology file:
  - JSON: {"cpus": 4, "memory_mb": 4096, "numa_nodes": 2}
          or {"numa": [{"cpus": 2, "memory_mb": 1024}, {"cpus": 2, "memory_mb": 3072}]}
  - NAME.synthetic (topologies/): an hwloc synthetic string, e.g. "pack:2 numa:1 core:8 pu:2";
    packages, NUMA nodes, cores and threads map onto -smp and -numa.
"""

import json
import os
import re
from dataclasses import dataclass, field


class TopologyError(Exception):
    pass


@dataclass
class GuestTopology:
    cpus: int = 2
    memory_mb: int = 2048
    sockets: int = 1
    threads: int = 1  # SMT threads per core
    nodes: list = field(default_factory=list)  # [(cpus, memory_mb)], empty = no NUMA layout

    def describe(self):
        numa = f", {len(self.nodes)} NUMA nodes" if self.nodes else ""
        return f"{self.cpus} vCPUs ({self.sockets} sockets, {self.threads} threads/core), {self.memory_mb} MiB{numa}"

    def qemu_args(self):
        cores = self.cpus // (self.sockets * self.threads)
        args = ["-smp", f"{self.cpus},sockets={self.sockets},cores={cores},threads={self.threads}",
                "-m", f"{self.memory_mb}M"]
        first = 0
        for i, (n_cpus, mem) in enumerate(self.nodes):
            args += ["-object", f"memory-backend-ram,id=kmem{i},size={mem}M",
                     "-numa", f"node,nodeid={i},cpus={first}-{first + n_cpus - 1},memdev=kmem{i}"]
            first += n_cpus
        return args


def split_even(total, parts):
    """`total` split into `parts` integers differing by at most one, larger first."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def make(cpus=2, memory_mb=2048, numa_nodes=0, sockets=1, threads=1):
    if cpus < 1 or memory_mb < 64:
        raise TopologyError("need at least 1 vCPU and 64 MiB")
    if cpus % (sockets * threads):
        raise TopologyError(f"{cpus} vCPUs do not split into {sockets} sockets x {threads} threads")
    nodes = []
    if numa_nodes:
        if numa_nodes > cpus:
            raise TopologyError(f"{numa_nodes} NUMA nodes but only {cpus} vCPUs")
        nodes = list(zip(split_even(cpus, numa_nodes), split_even(memory_mb, numa_nodes)))
    return GuestTopology(cpus, memory_mb, sockets, threads, nodes)


def parse_synthetic(text, memory_mb):
    """hwloc synthetic string -> GuestTopology (caches and groups multiply into cores)."""
    counts = {}
    order = []
    for tok in text.split():
        m = re.fullmatch(r"([A-Za-z0-9]+):(\d+)", tok)
        if not m:
            raise TopologyError(f"bad synthetic token '{tok}'")
        kind, n = m.group(1).lower(), int(m.group(2))
        order.append((kind, n))
        counts[kind] = n
    packages = counts.get("pack", counts.get("package", counts.get("socket", 1)))
    threads = counts.get("pu", 1)
    total = 1
    numa_total = 1
    seen_numa = False
    for kind, n in order:
        total *= n
        if not seen_numa:
            numa_total *= n
        if kind == "numa":
            seen_numa = True
    if not seen_numa:
        numa_total = 0
    elif numa_total == 1:
        numa_total = 0
    t = make(total, memory_mb, numa_total, packages, threads)
    return t


def load(path, memory_mb=2048):
    with open(path) as f:
        text = f.read()
    if path.endswith(".synthetic") or not text.lstrip().startswith("{"):
        lines = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
        if len(lines) != 1:
            raise TopologyError(f"{path}: want one hwloc synthetic line")
        return parse_synthetic(lines[0], memory_mb)
    d = json.loads(text)
    if "numa" in d:
        nodes = [(int(n["cpus"]), int(n["memory_mb"])) for n in d["numa"]]
        cpus = sum(c for c, _ in nodes)
        return GuestTopology(cpus, sum(m for _, m in nodes), int(d.get("sockets", 1)),
                             int(d.get("threads", 1)), nodes)
    return make(int(d.get("cpus", 2)), int(d.get("memory_mb", memory_mb)), int(d.get("numa_nodes", 0)),
                int(d.get("sockets", 1)), int(d.get("threads", 1)))


def find(name, source_dir):
    """A topology by path, or by name in topologies/ (with or without extension)."""
    if os.path.exists(name):
        return name
    for ext in ("", ".json", ".synthetic"):
        p = os.path.join(source_dir, "topologies", name + ext)
        if os.path.exists(p):
            return p
    raise TopologyError(f"topology '{name}' not found (path, or a name in topologies/)")
