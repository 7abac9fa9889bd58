"""The drift guard: a batch whose reference moved is measured again (the reference is made to move for real)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from hwface.measure.drift import Bracket, DriftGuard, Reference, deviation
from hwface.rpc.devices import connect
from hwface.rpc.embedded import device_for
from hwface.targets import load_target


def test_deviation_is_the_largest_relative_move():
    assert deviation(Reference(105.0, 1000.0), 100.0, 1000.0) == pytest.approx(0.05)
    assert deviation(Reference(100.0, 1500.0), 100.0, 1000.0) == pytest.approx(0.5)


def _burner() -> subprocess.Popen:
    """A process that keeps one CPU busy (its own session, so it is stopped by group)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)


def _stop(procs: list) -> None:
    for p in procs:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    procs.clear()


def test_a_batch_whose_reference_moved_is_measured_again(quick_guard):
    spec = load_target("host")
    guard = DriftGuard(spec, tolerance=0.25, max_attempts=3, rests_s=(0.2,), min_repeat_ms=5,
                       reference=quick_guard.reference)
    burners: list[subprocess.Popen] = []
    calls = []

    def measure() -> int:
        calls.append(len(calls))
        if len(calls) == 1:  # load the machine while the first attempt ends: its closing reference moves
            burners.extend(_burner() for _ in range(2 * (os.cpu_count() or 1)))
            time.sleep(0.5)
        else:
            _stop(burners)
        return len(calls)

    with device_for(spec, None) as ep:
        session = connect(ep.tracker, ep.key, timeout_s=60)
        try:
            value, bracket = guard.run(session, measure)
        finally:
            _stop(burners)
            guard.forget(session)
            session.sess = None
    assert isinstance(bracket, Bracket)
    assert len(calls) >= 2 and guard.redone >= 1 and bracket.attempts == len(calls) and value == len(calls)
    row = bracket.to_dict()
    assert row["attempts"] >= 2 and row["kernel_us_before"] > 0 and row["network_median_us"] > 0


def test_host_load_counts_other_processes_and_not_this_process_tree():
    from hwface.measure.host_load import CpuSample, load_between

    a = CpuSample(busy_s=100.0, own_s={(1, 0.0): 10.0, (2, 0.0): 5.0}, steal_s=1.0, at_s=50.0)
    # 3 s busy in 2 s. Ours: process 1 ran 1.0 s and reaped process 2, which ran 0.2 s more (5.2 s in its life);
    # process 3 started and ran 0.5 s. Foreign: 3.0 - 1.7 = 1.3 s.
    b = CpuSample(busy_s=103.0, own_s={(1, 0.0): 16.2, (3, 0.0): 0.5}, steal_s=1.5, at_s=52.0)
    load = load_between(a, b)
    assert load.foreign_s == pytest.approx(1.3) and load.foreign_cores == pytest.approx(0.65)
    assert load.steal_cores == pytest.approx(0.25) and load.too_busy(0.5) and not load.too_busy(0.7)
    after = CpuSample(103.0, {(1, 0.0): 17.0, (3, 0.0): 0.5}, 1.5, 53.0)
    assert load_between(b, after).foreign_cores == 0.0  # ours outran busy (clock ticks): never negative
    blip = load_between(b, CpuSample(103.02, b.own_s, 1.5, 52.1))  # 0.2 cores, but 20 ms: a tick, not a load
    assert blip.foreign_cores == pytest.approx(0.2) and not blip.too_busy(0.1)


def _foreign_burner(seconds: float) -> None:
    """Keep one CPU busy for ``seconds`` from a process that is not a descendant of this one (its parent exits)."""
    subprocess.run(["sh", "-c", f"{sys.executable} -c 'import time; t = time.time() + {seconds}\n"
                    "while time.time() < t: pass' >/dev/null 2>&1 &"], check=True)


def test_a_batch_during_which_another_process_took_the_cpu_is_measured_again(quick_guard):
    """A load that comes and goes between the references: they cannot see it, the host-load watch does."""
    spec = load_target("host")
    guard = DriftGuard(spec, tolerance=10.0, max_attempts=2, rests_s=(0.1,), min_repeat_ms=5,
                       reference=quick_guard.reference, max_foreign_cores=0.5)
    calls, told = [], []

    def measure() -> None:
        calls.append(1)
        if len(calls) == 1:
            _foreign_burner(1.5)
            time.sleep(1.6)

    with device_for(spec, None) as ep:
        session = connect(ep.tracker, ep.key, timeout_s=60)
        try:
            _, bracket = guard.run(session, measure, on_redo=told.append)
        finally:
            guard.forget(session)
            session.sess = None
    assert len(calls) == 2 and guard.redone == 1, told
    assert "other processes took" in told[0]
    assert bracket.to_dict()["foreign_cores"] >= 0.0 and bracket.load is not None


def test_the_host_load_is_watched_only_on_a_server_of_this_process_tree(quick_guard):
    """The embedded device's server is a child of this process; a server elsewhere (``--tracker``) is not."""
    from hwface.measure.host_load import serves_here
    from hwface.rpc.procs import free_port

    spec = load_target("host")
    with device_for(spec, None) as ep:
        session = connect(ep.tracker, ep.key, timeout_s=60)
        try:
            assert serves_here(session.address)
        finally:
            session.sess = None
    assert not serves_here(f"127.0.0.1:{free_port()}")
