"""Several networks timed in rounds: each round times every one of them once, so their ratios are taken per round.

The box drifts by up to 2x for minutes at a time. Two networks profiled an hour
apart compare that drift, not their architectures (the end-to-end runs of the
tuned zoo disagree with their own kernel sums by up to 45%). Timed in rounds, each
network's sample of round ``r`` is seconds away from every other network's, and a
ratio between two networks is the median of their per-round ratios: what drift
does to one round it does to both. Rounds alternate the order (forwards, then
backwards) so that no network always runs right after the same neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

ROUNDS = 7


@dataclass(frozen=True)
class Rounds:
    """Per-round median latencies (us) of named timings, all taken in one run."""

    medians_us: dict[str, list[float]]

    def median_us(self, name: str) -> float:
        """A timing's median over the rounds (us)."""
        return float(np.median(self.medians_us[name]))

    def ratio(self, a: str, b: str) -> tuple[float, float, float]:
        """(median, p10, p90) over the rounds of ``a``'s latency over ``b``'s."""
        r = np.asarray(self.medians_us[a]) / np.asarray(self.medians_us[b])
        return float(np.median(r)), float(np.percentile(r, 10)), float(np.percentile(r, 90))


def time_in_rounds(timers: dict[str, Callable[[], float]], rounds: int = ROUNDS,
                   progress: Callable[[str], None] | None = None) -> Rounds:
    """Call every timer once a round, forwards in even rounds and backwards in odd ones.

    Parameters
    ----------
    timers : dict of name -> callable
        Each returns one median latency in microseconds (a few samples of its network).
    rounds : int
        Rounds; each name gets one figure a round.
    progress : callable, optional
        ``progress(message)`` once a round.
    """
    names = list(timers)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            out[name].append(float(timers[name]()))
        if progress:
            progress(f"round {r + 1}/{rounds}: {len(names)} timings")
    return Rounds(out)
