"""CPU time that processes outside the measurement took on this machine while a batch was timed.

The drift guard's references time the machine before and after a batch, so a
load that starts and ends between them slips through: a test file run in the
foreground while a network's kernels were timed made them 1.8x slower (session
14, frmbconv_se_pre) with every reference within 5%. When the device is this
machine, the guard therefore also counts the CPU time of everything but the
measuring process and its descendants (the embedded tracker and RPC servers
are its children) over the batch. On this 2-core box an idle system takes 0.006
to 0.01 cores that way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

FOREIGN_CORES = 0.10  # cores other processes may take over a batch before it is measured again


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at one instant: every CPU's busy time, this process tree's per process, and steal."""

    busy_s: float  # user + nice + system + irq + softirq over all CPUs (steal not included)
    own_s: dict[tuple[int, float], float]  # (pid, create time) -> its CPU seconds, reaped children included
    steal_s: float  # taken by the hypervisor from this machine's virtual CPUs
    at_s: float  # time.monotonic()


@dataclass(frozen=True)
class HostLoad:
    """Average cores taken between two samples by foreign processes and by the hypervisor (steal)."""

    foreign_cores: float
    steal_cores: float


def _tree_seconds() -> dict[tuple[int, float], float]:
    import psutil

    root = psutil.Process()
    out = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            out[(p.pid, p.create_time())] = t.user + t.system + t.children_user + t.children_system
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


def cpu_sample() -> CpuSample:
    """The machine's and this process tree's cumulative CPU time now."""
    import psutil

    c = psutil.cpu_times()
    busy = c.user + c.nice + c.system + getattr(c, "irq", 0.0) + getattr(c, "softirq", 0.0)
    return CpuSample(busy, _tree_seconds(), getattr(c, "steal", 0.0), time.monotonic())


def load_between(a: CpuSample, b: CpuSample) -> HostLoad:
    """Foreign and stolen cores, on average, from sample ``a`` to sample ``b`` (never negative).

    Our time is counted per process: one started since ``a`` counts from zero;
    one that ended before ``b`` drops out (its last moments count as foreign, a
    small over-estimate, where subtracting its whole life would hide real load).
    """
    wall = max(b.at_s - a.at_s, 1e-6)
    own = sum(t - a.own_s.get(proc, 0.0) for proc, t in b.own_s.items())
    foreign = (b.busy_s - a.busy_s) - own
    return HostLoad(max(foreign, 0.0) / wall, max(b.steal_s - a.steal_s, 0.0) / wall)
