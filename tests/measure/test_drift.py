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
