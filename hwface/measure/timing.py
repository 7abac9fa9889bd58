"""Latency statistics from TVM's ``time_evaluator`` results."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Defaults for end-to-end timing: warm up once, then `repeat` samples of at least
# `min_repeat_ms` each, so that one sample is never a single cold call.
REPEAT = 15
MIN_REPEAT_MS = 50
WARMUP = 1


@dataclass(frozen=True)
class LatencyStats:
    """Repeated-run latency in microseconds: median, p10, p90, and the coefficient of variation."""

    median_us: float
    p10_us: float
    p90_us: float
    cv: float
    samples: int

    @classmethod
    def from_seconds(cls, results_s) -> "LatencyStats":
        us = np.asarray(results_s, dtype=float) * 1e6
        mean = float(us.mean())
        return cls(
            median_us=float(np.median(us)),
            p10_us=float(np.percentile(us, 10)),
            p90_us=float(np.percentile(us, 90)),
            cv=float(us.std() / mean) if mean > 0 else 0.0,
            samples=int(us.size),
        )


def time_vm_main(vm, dev, args, repeat: int = REPEAT, min_repeat_ms: int = MIN_REPEAT_MS) -> LatencyStats:
    """Time ``vm["main"](*args)`` with ``time_evaluator`` (one warm-up call first)."""
    f = vm.time_evaluator("main", dev, number=1, repeat=repeat, min_repeat_ms=min_repeat_ms,
                          cooldown_interval_ms=0)
    for _ in range(WARMUP):
        vm["main"](*args)
    return LatencyStats.from_seconds(f(*args).results)
