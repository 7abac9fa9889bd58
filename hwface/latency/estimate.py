"""A network's latency from its kernels: measured where the database has the key, predicted elsewhere, plus overhead.

``network = sum over kernel calls (measured or predicted latency) + overhead(calls)``
(:class:`~hwface.latency.predictor.Overhead`). The interval adds the kernels' p10
and p90 (their errors taken as fully correlated; a measured kernel's band is its
own p10-p90) and widens the overhead-corrected total by the overhead fit's
relative residual band. Every kernel says where its number came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np

from hwface.latency.key import LayerKey


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
    """A network's estimated latency (microseconds) with its per-kernel breakdown."""

    total_us: float
    low_us: float
    high_us: float
    kernel_sum_us: float
    overhead_us: float
    kernel_calls: int
    measured_kernels: int
    predicted_kernels: int
    kernels: list[KernelEstimate]

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "kernels"},
                "kernels": [asdict(k) for k in self.kernels]}


class MeasuredTable:
    """Current training rows by key: median, p10 and p90 of the rows' medians (microseconds)."""

    def __init__(self, frame):
        if len(frame):
            g = frame.groupby("key")
            self._rows = {k: (float(m), float(lo), float(hi)) for k, m, lo, hi in zip(
                g.size().index, g["median_us"].median(), g["p10_us"].median(), g["p90_us"].median())}
        else:
            self._rows = {}

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: str) -> tuple[float, float, float] | None:
        return self._rows.get(key)


def estimate_network(kernels: Iterable[tuple[str, int]], table: MeasuredTable | None, predictor) -> NetworkEstimate:
    """Estimate a network given its distinct kernels as ``(key string, calls)``.

    Parameters
    ----------
    kernels : iterable of (str, int)
    table : MeasuredTable or None
        Measured kernels (None: predict every kernel).
    predictor : Predictor
    """
    items = [(k, int(n)) for k, n in kernels]
    measured = {k: table.get(k) for k, _ in items} if table is not None else {}
    missing = [k for k, _ in items if measured.get(k) is None]
    point, low, high = predictor.predict_us([LayerKey.from_str(k) for k in missing])
    predicted = {k: (float(p), float(lo), float(hi)) for k, p, lo, hi in zip(missing, point, low, high)}
    out = []
    for k, n in items:
        m = measured.get(k)
        lat, lo, hi = m if m is not None else predicted[k]
        out.append(KernelEstimate(k, k.split("|", 1)[0].removeprefix("op="), n, lat, min(lo, lat), max(hi, lat),
                                  "measured" if m is not None else "predicted"))
    calls = sum(n for _, n in items)
    ksum = float(sum(e.latency_us * e.calls for e in out))
    over = predictor.overhead.of(calls)
    total = ksum + over
    low_sum = float(sum(e.low_us * e.calls for e in out)) + over
    high_sum = float(sum(e.high_us * e.calls for e in out)) + over
    return NetworkEstimate(
        total_us=total, low_us=low_sum * (1 + min(0.0, predictor.overhead.rel_p10)),
        high_us=high_sum * (1 + max(0.0, predictor.overhead.rel_p90)), kernel_sum_us=ksum, overhead_us=over,
        kernel_calls=calls, measured_kernels=sum(e.source == "measured" for e in out),
        predicted_kernels=sum(e.source == "predicted" for e in out), kernels=out)


def madds_baseline(train_madds, train_us):
    """The MAdds-only baseline: ``log(latency) = a + b * log(MAdds)`` fitted on training networks; returns a predictor function."""
    x = np.log(np.asarray(train_madds, dtype=float))
    y = np.log(np.asarray(train_us, dtype=float))
    b, a = np.polyfit(x, y, 1) if x.size >= 2 else (0.0, float(np.mean(y)) if y.size else 0.0)
    return lambda madds: np.exp(a + b * np.log(np.asarray(madds, dtype=float)))
