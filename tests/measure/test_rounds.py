"""Timing in rounds: every timer once a round, the order reversed every other round, ratios per round."""

from __future__ import annotations

import pytest

from hwface.measure.rounds import time_in_rounds


def test_rounds_alternate_the_order():
    calls: list[str] = []

    def timer(name: str, us: float):
        def run() -> float:
            calls.append(name)
            return us
        return run

    r = time_in_rounds({"a": timer("a", 200.0), "b": timer("b", 100.0), "c": timer("c", 50.0)}, rounds=4)
    assert calls == ["a", "b", "c", "c", "b", "a", "a", "b", "c", "c", "b", "a"]
    assert r.medians_us["c"] == [50.0] * 4 and r.median_us("a") == 200.0 and r.ratio("a", "c") == (4.0, 4.0, 4.0)


def test_a_drift_between_rounds_cancels_in_the_ratio():
    state = {"round": 0}
    seen = []

    def timer(us):
        def run():
            seen.append(1)
            return us * (2.0 if state["round"] % 2 else 1.0)
        return run

    def progress(msg):
        state["round"] += 1

    r = time_in_rounds({"a": timer(30.0), "b": timer(10.0)}, rounds=5, progress=progress)
    assert r.ratio("a", "b") == (3.0, 3.0, 3.0)
    assert r.medians_us["a"] == [30.0, 60.0, 30.0, 60.0, 30.0]
