"""The accuracy metrics of latency predictors (nn-Meter's, plus the ranking): RMSE, RMSPE, share within ±X%, Kendall τ."""

from __future__ import annotations

import numpy as np

BANDS = (0.05, 0.10, 0.15)


def accuracy(predicted, measured) -> dict[str, float]:
    """How close ``predicted`` is to ``measured`` (same units, e.g. microseconds).

    Returns
    -------
    dict
        ``n``; ``rmse`` (units of the input); ``rmspe`` (root mean squared
        relative error, a fraction); ``within_5``/``within_10``/``within_15``
        (share with ``|pred/meas - 1| <= 5/10/15%``); ``kendall_tau`` of the two
        rankings (NaN below 2 points); ``median_ape`` (median relative error).
    """
    from scipy.stats import kendalltau

    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    if p.shape != m.shape:
        raise ValueError(f"predicted and measured differ in shape: {p.shape} vs {m.shape}")
    if p.size == 0:
        return {"n": 0, "rmse": float("nan"), "rmspe": float("nan"), "median_ape": float("nan"),
                **{f"within_{round(b * 100)}": float("nan") for b in BANDS}, "kendall_tau": float("nan")}
    rel = p / m - 1.0
    out = {"n": int(p.size), "rmse": float(np.sqrt(np.mean((p - m) ** 2))), "rmspe": float(np.sqrt(np.mean(rel ** 2))),
           "median_ape": float(np.median(np.abs(rel)))}
    for b in BANDS:
        out[f"within_{round(b * 100)}"] = float(np.mean(np.abs(rel) <= b + 1e-12))
    out["kendall_tau"] = float(kendalltau(p, m).statistic) if p.size >= 2 else float("nan")
    return out


def coverage(low, high, measured) -> float:
    """Share of ``measured`` inside ``[low, high]``."""
    lo, hi, m = (np.asarray(x, dtype=float) for x in (low, high, measured))
    return float(np.mean((lo <= m) & (m <= hi))) if m.size else float("nan")
