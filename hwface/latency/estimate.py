"""A network's latency from its kernels: measured where the database has the key, predicted elsewhere, plus overhead.

``network = sum over kernel calls (measured or predicted latency) + overhead(calls, sum, weights)``
(:class:`~hwface.latency.overhead.Overhead`). The p10-p90 interval takes the
kernels' errors as independent: each kernel call contributes its latency times
the log-width of its own band (predicted: the quantile model's p10/p90;
measured: its rows' p10-p90), added in quadrature, and the result is combined,
again in quadrature, with the overhead's band (the relative errors of training
networks each left out of its fit: what additivity misses). Session 6, with the
band of the fit's own residuals: adding the kernel bands as fully correlated
covered 100% of the held-out networks with a band of ±18%; independent errors
alone 64% (±2.6%); with the overhead band 79% (±5%).
Every kernel says where its number came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any, Iterable

import numpy as np

from hwface.latency.overhead import network_weight_mb


@dataclass(frozen=True)
class KernelEstimate:
    """One distinct kernel of a network: latency of one call and its band (microseconds), calls, source."""

    key: str
    op: str
    calls: int
    latency_us: float
    low_us: float
    high_us: float
    source: str  # "measured" or "predicted"


@dataclass(frozen=True)
class NetworkEstimate:
    """A network's estimated latency (microseconds) with its per-kernel breakdown.

    The breakdown (:attr:`kernels`) is built from the kernel answers the first
    time it is read: a search that reads only totals never pays for it.
    """

    total_us: float
    low_us: float
    high_us: float
    kernel_sum_us: float
    overhead_us: float
    kernel_calls: int
    measured_kernels: int
    predicted_kernels: int
    # what the breakdown is built from; not part of the summary
    answers: Any = field(repr=False, compare=False)  # LayerAnswers of the distinct kernels
    calls: np.ndarray = field(repr=False, compare=False)  # calls of each distinct kernel

    @cached_property
    def kernels(self) -> list[KernelEstimate]:
        a = self.answers
        return [KernelEstimate(k, k.split("|", 1)[0].removeprefix("op="), n, v, lo, hi, a.source(i))
                for i, (k, n, v, lo, hi) in enumerate(zip(a.keys, self.calls.tolist(), a.latency_us.tolist(),
                                                          a.low_us.tolist(), a.high_us.tolist()))]

    def summary(self) -> dict[str, Any]:
        """The totals without the breakdown (every field but ``answers`` and ``calls``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.compare}

    def to_dict(self, breakdown: bool = True) -> dict[str, Any]:
        """:meth:`summary` and, unless ``breakdown`` is False, ``kernels`` as a list of dicts."""
        out = self.summary()
        if breakdown:
            out["kernels"] = [asdict(k) for k in self.kernels]
        return out


def estimate_network(kernels: Iterable[tuple[str, int]], lookup) -> NetworkEstimate:
    """Estimate a network given its distinct kernels as ``(key string, calls)``.

    Parameters
    ----------
    kernels : iterable of (str, int)
    lookup : KernelLookup
        Measured-first kernel answers and the predictor whose overhead fit applies
        (:class:`hwface.latency.lookup.KernelLookup`).
    """
    items = list(kernels)
    ans = lookup.layers([k for k, _ in items])
    n = np.fromiter((c for _, c in items), dtype=np.int64, count=len(items))
    overhead = lookup.predictor.overhead
    calls = int(n.sum())
    spent = ans.latency_us * n
    ksum = float(spent.sum())
    over = overhead.of(calls, ksum, network_weight_mb(items) if overhead.w_us_per_mb else 0.0)
    total = ksum + over
    down = up = 0.0
    if items:
        low = np.maximum(ans.low_us, ans.latency_us * 1e-3)  # a zero p10 would make the log infinite
        down = float(np.sqrt(np.sum((spent * np.log(ans.latency_us / low)) ** 2))) / total
        up = float(np.sqrt(np.sum((spent * np.log(ans.high_us / ans.latency_us)) ** 2))) / total
    measured = int(ans.measured.sum())
    return NetworkEstimate(
        total_us=total, low_us=total * max(0.0, 1.0 - float(np.hypot(down, min(0.0, overhead.rel_p10)))),
        high_us=total * (1.0 + float(np.hypot(up, max(0.0, overhead.rel_p90)))), kernel_sum_us=ksum,
        overhead_us=over, kernel_calls=calls, measured_kernels=measured, predicted_kernels=len(items) - measured,
        answers=ans, calls=n)


def madds_baseline(train_madds, train_us):
    """The MAdds-only baseline: ``log(latency) = a + b * log(MAdds)`` fitted on training networks; returns a predictor function."""
    x = np.log(np.asarray(train_madds, dtype=float))
    y = np.log(np.asarray(train_us, dtype=float))
    b, a = np.polyfit(x, y, 1) if x.size >= 2 else (0.0, float(np.mean(y)) if y.size else 0.0)
    return lambda madds: np.exp(a + b * np.log(np.asarray(madds, dtype=float)))
