"""Drift correction: latencies scaled to one reference state of the device.

Every measuring batch times a fixed reference before and after it, a hot kernel
and a whole small network (:mod:`hwface.measure.drift`), and each row keeps those
timings. The drift guard re-measures a batch whose references moved from their
running medians, but a machine can stay in a slower state for hours: on the
shared 2-core box the references ran 15% slower for a whole session (kernel
reference 121 -> 140 us), the running median moved with them, and every
network measured then looked 15% slower than the same kernels had measured the
day before.

So training, lookups and evaluation use each row's latency times
``canonical / reference``: the row's own reference against the median
reference of the training rows (the canonical state, saved with the
predictor). Kernel rows scale by the hot-kernel reference of their batch; a
network's end-to-end time by the network reference of its end-to-end batch,
its kernel sum by the kernel reference of its kernels' batch. Rows keep their
raw figures; a row without references is not scaled.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np


@dataclass(frozen=True)
class ReferenceState:
    """The canonical reference timings (us) that latencies are scaled to."""

    kernel_us: float
    network_us: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def reference_us(reference: Any, which: str) -> float:
    """Mean of the before and after timings of the ``which`` (``kernel`` or ``network``) reference, in us; NaN if absent.

    ``reference`` is a row's reference record (a dict or its JSON).
    """
    ref = json.loads(reference) if isinstance(reference, str) else reference
    if not isinstance(ref, dict) or f"{which}_us_before" not in ref:
        return float("nan")
    return (float(ref[f"{which}_us_before"]) + float(ref[f"{which}_us_after"])) / 2


def was_drifted(reference: Any) -> bool:
    """True when the drift guard kept the row's batch (any batch of a network's record) flagged ``drifted``."""
    ref = json.loads(reference) if isinstance(reference, str) else reference
    if not isinstance(ref, dict):
        return False
    if "drifted" in ref:
        return bool(ref["drifted"])
    return any(was_drifted(part) for part in ref.values() if isinstance(part, dict))


def undisturbed(rows):
    """``(rows, left_out)``: the rows (kernel or network frame with ``reference``) whose batches were not kept drifted.

    A batch kept ``drifted`` still failed the guard on its last attempt (a
    reference moved, or other processes were busy): its timings describe a
    disturbed machine, so they neither train a predictor nor answer a lookup
    (they stay in the database with their references).
    """
    if rows.empty or "reference" not in rows:
        return rows, 0
    drifted = [was_drifted(r) for r in rows["reference"]]
    return rows[[not d for d in drifted]], int(sum(drifted))


def canonical_state(rows) -> ReferenceState | None:
    """Median references of training kernel rows (a frame with ``reference``); None when none has one."""
    if "reference" not in rows:
        return None
    kernel = [reference_us(r, "kernel") for r in rows["reference"]]
    network = [reference_us(r, "network") for r in rows["reference"]]
    if np.all(np.isnan(kernel)) or np.all(np.isnan(network)):
        return None
    return ReferenceState(float(np.nanmedian(kernel)), float(np.nanmedian(network)))


def scale(references: Iterable[Any], which: str, state: ReferenceState | None) -> np.ndarray:
    """Per row, ``canonical / own reference`` (1 where the row has none, or without a state)."""
    refs = np.array([reference_us(r, which) for r in references], dtype=float)
    if state is None:
        return np.ones(len(refs))
    out = getattr(state, f"{which}_us") / refs
    return np.where(np.isfinite(out), out, 1.0)


def normalized_rows(rows, state: ReferenceState | None):
    """Kernel rows with ``median_us``, ``p10_us`` and ``p90_us`` scaled by their batch's kernel reference."""
    if state is None or rows.empty:
        return rows
    out = rows.copy()
    s = scale(out["reference"], "kernel", state)
    for col in ("median_us", "p10_us", "p90_us"):
        if col in out:
            out[col] = out[col] * s
    return out


def normalized_networks(networks, state: ReferenceState | None):
    """Networks with ``median_us`` (end to end) and ``kernel_sum_us`` scaled by their batches' references."""
    if state is None or networks.empty:
        return networks
    out = networks.copy()
    refs = list(out["reference"])
    e2e = scale([r.get("end_to_end") if isinstance(r, dict) else None for r in refs], "network", state)
    kernels = scale([r.get("kernels") if isinstance(r, dict) else None for r in refs], "kernel", state)
    for col in ("median_us", "p10_us", "p90_us"):
        if col in out:
            out[col] = out[col] * e2e
    out["kernel_sum_us"] = out["kernel_sum_us"] * kernels
    return out
