"""CPU time that processes outside the measurement took on this machine while a batch was timed.

The drift guard's references time the machine before and after a batch, so a
load that starts and ends between them slips through: a test file run in the
foreground while a network's kernels were timed made them 1.8x slower (session
14, frmbconv_se_pre) and the guard, its references within 5%, kept them. When
the device's RPC server is this process or one of its descendants (the embedded
device: :func:`serves_here`), the guard therefore also counts the CPU time of
everything but that process tree over the batch. On this 2-core box an idle
system takes 0.006 to 0.01 cores that way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

FOREIGN_CORES = 0.10  # cores other processes may take over a batch before it is measured again
MIN_FOREIGN_S = 0.05  # ... and CPU seconds: below, a short batch's count is clock-tick noise (10 ms ticks)


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
    foreign_s: float  # CPU seconds of foreign processes over the interval

    def too_busy(self, max_cores: float) -> bool:
        """Other processes took more than ``max_cores`` on average, and more than clock-tick noise."""
        return self.foreign_cores > max_cores and self.foreign_s > MIN_FOREIGN_S


def _tree() -> list:
    import psutil

    root = psutil.Process()
    return [root, *root.children(recursive=True)]


def serves_here(address: str) -> bool:
    """True when the server listening at ``HOST:PORT`` is this process or one of its descendants."""
    import psutil

    port = int(address.rsplit(":", 1)[1])
    for p in _tree():
        try:
            if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                   for c in p.net_connections(kind="tcp")):
                return True
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return False


def _tree_seconds() -> dict[tuple[int, float], float]:
    import psutil

    out = {}
    for p in _tree():
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
    busy = c.user + getattr(c, "nice", 0.0) + c.system + getattr(c, "irq", 0.0) + getattr(c, "softirq", 0.0)
    return CpuSample(busy, _tree_seconds(), getattr(c, "steal", 0.0), time.monotonic())


def load_between(a: CpuSample, b: CpuSample) -> HostLoad:
    """Foreign and stolen cores, on average, from sample ``a`` to sample ``b`` (never negative).

    Our time is counted per process: one started since ``a`` counts from zero;
    one that ended since ``a`` was reaped by its parent (every process of the tree
    waits for its children), whose reaped-children time now holds its whole life,
    so its time at ``a`` is taken off again.
    """
    wall = max(b.at_s - a.at_s, 1e-6)
    own = sum(t - a.own_s.get(proc, 0.0) for proc, t in b.own_s.items())
    own -= sum(t for proc, t in a.own_s.items() if proc not in b.own_s)
    foreign = max((b.busy_s - a.busy_s) - own, 0.0)
    return HostLoad(foreign / wall, max(b.steal_s - a.steal_s, 0.0) / wall, foreign)
