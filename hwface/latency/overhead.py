"""A network's time beyond the sum of its kernels' own (hot-loop) timings, fitted on training networks.

``end_to_end - sum(kernels) = b * calls + r * sum(kernels) + w * weight_MB``:

- ``b`` (us a call): what the Relax VM adds a kernel call, dispatch and
  allocations (see ``benchmarks/vm_call_overhead.py``);
- ``r``: the kernels running slower in sequence than each in its own timing loop
  (colder caches for their activations), in proportion to their time; it
  dominates once they are tuned (rocketlake: untuned zoo networks r = 0.004,
  tuned networks about 0.25);
- ``w`` (us a megabyte, 1e6 bytes): fetching the weights, which stay in cache
  while a kernel is timed alone but are evicted by the other kernels in sequence.

Non-negative least squares on the relative error (residuals weighted by
``1 / end_to_end``: the networks range over two orders of magnitude, and an
unweighted fit with an intercept followed the timing noise of the largest zoo
networks). The band (p10/p90 of the relative residual) is that of each training
network left out of the fit, from :data:`MIN_NETWORKS_FOR_BAND` networks up (the
fit's own residuals understate a new network's error). The weights term is kept
only when the root mean square of those left-out errors is smaller with it than
with ``b`` and ``r`` alone, and only from :data:`MIN_NETWORKS_FOR_WEIGHTS`
training networks up (three parameters on three networks fit anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np

MIN_NETWORKS_FOR_WEIGHTS = 5
MIN_NETWORKS_FOR_BAND = 3  # from three networks up, the band is that of networks left out of the fit
MB = 1e6


@dataclass(frozen=True)
class Overhead:
    """``a_us + b_us * kernel_calls + r * kernel_sum_us + w_us_per_mb * weight_mb`` and its relative band.

    ``rel_p10``/``rel_p90``: p10/p90 of ``end_to_end / predicted - 1`` over the training networks
    (each left out of the fit, from :data:`MIN_NETWORKS_FOR_BAND` networks up).
    """

    a_us: float
    b_us: float
    rel_p10: float = 0.0
    rel_p90: float = 0.0
    networks: int = 0
    r: float = 0.0  # share of the kernels' own (hot-loop) time added by running them in sequence
    w_us_per_mb: float = 0.0  # time to fetch a megabyte of weights that a kernel's own loop had in cache

    def of(self, kernel_calls: int, kernel_sum_us: float, weight_mb: float = 0.0) -> float:
        """Overhead in microseconds of a network of ``kernel_calls`` calls summing to ``kernel_sum_us``
        whose kernels read ``weight_mb`` megabytes of weights."""
        return self.a_us + self.b_us * kernel_calls + self.r * kernel_sum_us + self.w_us_per_mb * weight_mb


@lru_cache(maxsize=1 << 16)
def _key_weight_bytes(key: str) -> int:
    from hwface.latency.features import weight_bytes
    from hwface.latency.key import LayerKey

    return weight_bytes(LayerKey.from_str(key))


def network_weight_mb(kernels: Iterable[tuple[str, int]]) -> float:
    """Megabytes of weights (and per-channel constants) a network's kernels read, over all ``(key, calls)``."""
    return sum(_key_weight_bytes(k) * int(n) for k, n in kernels) / MB


def _columns(names: tuple[str, ...], s, n, w) -> np.ndarray:
    return np.column_stack([{"b": n, "r": s, "w": w}[name] for name in names])


def _fit(names: tuple[str, ...], s, e, n, w) -> dict[str, float]:
    from scipy.optimize import nnls

    coef, _ = nnls(_columns(names, s, n, w) / e[:, None], (e - s) / e)
    return dict(zip(names, map(float, coef)))


def _predicted(coef: dict[str, float], s, n, w) -> np.ndarray:
    return s + coef.get("b", 0.0) * n + coef.get("r", 0.0) * s + coef.get("w", 0.0) * w


def _left_one_out(names: tuple[str, ...], s, e, n, w) -> np.ndarray:
    """Each network's relative error when the overhead is fitted on the others (``e / predicted - 1``)."""
    out = np.empty(s.size)
    for i in range(s.size):
        keep = np.arange(s.size) != i
        coef = _fit(names, s[keep], e[keep], n[keep], w[keep])
        out[i] = e[i] / _predicted(coef, s[i:i + 1], n[i:i + 1], w[i:i + 1])[0] - 1.0
    return out


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def fit_overhead(kernel_sums_us, end_to_end_us, kernel_calls, weight_mb=None) -> Overhead:
    """Fit :class:`Overhead` on training networks (b, r, w >= 0; ``a_us`` = 0); no network: zero.

    Parameters
    ----------
    kernel_sums_us, end_to_end_us : array-like
        Each network's sum of kernel timings and its end-to-end time (us).
    kernel_calls : array-like
        Each network's kernel calls.
    weight_mb : array-like, optional
        Each network's weights (:func:`network_weight_mb`); without them, no weights term.
    """
    s, e, n = (np.asarray(x, dtype=float) for x in (kernel_sums_us, end_to_end_us, kernel_calls))
    if s.size == 0:
        return Overhead(0.0, 0.0)
    w = np.zeros_like(s) if weight_mb is None else np.asarray(weight_mb, dtype=float)
    forms: list[tuple[str, ...]] = [("b", "r")]
    if weight_mb is not None and s.size >= MIN_NETWORKS_FOR_WEIGHTS:
        forms.append(("b", "r", "w"))
    left_out = {f: _left_one_out(f, s, e, n, w) for f in forms} if s.size >= MIN_NETWORKS_FOR_BAND else {}
    names = min(forms, key=lambda f: _rms(left_out[f])) if len(forms) > 1 else forms[0]  # a tie keeps b and r
    coef = _fit(names, s, e, n, w)
    rel = left_out[names] if left_out else e / _predicted(coef, s, n, w) - 1.0
    return Overhead(0.0, coef["b"], rel_p10=float(np.percentile(rel, 10)), rel_p90=float(np.percentile(rel, 90)),
                    networks=int(s.size), r=coef["r"], w_us_per_mb=coef.get("w", 0.0))
