"""The XGBoost kernel-latency predictor of one target and regime, and the overhead of a network.

Trained on current rows only (:meth:`hwface.latency.store.LatencyStore.current_frame`),
one row per layer key (the median of its measurements), on log latency:

- a *point* model (squared error on ``log(latency_us)``), either one model with
  the op kind among its features (``mode="global"``) or one model per op kind
  (``mode="per_kind"``, kinds with few rows fall back to the global one); both are
  fitted on a held-back fifth of the keys and the better is kept;
- an *interval* model (XGBoost quantile regression, p10 and p90 of the same target);
- the network's *overhead* beyond its kernels (:mod:`hwface.latency.overhead`),
  fitted on the training networks, with the p10/p90 of their relative errors
  when each is left out of the fit.

Saved in XGBoost's own UBJSON format, one file per model, in a folder
``latency_db/<target>.<regime>.predictor/`` with ``sidecar.json``: the feature
list, the data fingerprint, the row count, the XGBoost version, the mode, the
overhead fit and the metrics. No pickles. Loading checks the features and the
fingerprint and refuses a mismatch in one line that says how to retrain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwface.errors import HwfaceError
from hwface.latency.features import FEATURE_VERSION, FEATURES, feature_matrix
from hwface.latency.key import LayerKey
from hwface.latency.overhead import Overhead, fit_overhead, network_weight_mb
from hwface.latency.reference import ReferenceState, canonical_state, normalized_networks, normalized_rows

MODES = ("global", "per_kind")
QUANTILES = (0.1, 0.9)
MIN_KIND_ROWS = 40
POINT_PARAMS = {"objective": "reg:squarederror", "eta": 0.1, "max_depth": 7, "min_child_weight": 1.0,
                "subsample": 0.9, "colsample_bytree": 0.8, "lambda": 1.0, "nthread": 2, "seed": 0}
QUANTILE_PARAMS = {"objective": "reg:quantileerror", "quantile_alpha": list(QUANTILES), "eta": 0.1, "max_depth": 6,
                   "subsample": 0.9, "colsample_bytree": 0.8, "nthread": 2, "seed": 0}
ROUNDS = 300
SIDECAR = "sidecar.json"
WORK_BYTES_WEIGHT = 0.25  # multiply-adds a byte moved is worth in the work margin
WORK_FLOOR = 1000.0  # work of an empty kernel (launch and loop overhead), multiply-add units


class PredictorError(HwfaceError):
    """No predictor, a corrupt one, or one trained for other features or data."""


def training_table(frame) -> tuple[list[LayerKey], np.ndarray]:
    """One row per layer key: the keys and the median of their measured medians (microseconds)."""
    grouped = frame.groupby("key")["median_us"].median()
    return [LayerKey.from_str(k) for k in grouped.index], grouped.to_numpy(dtype=float)


def work_margin(x: np.ndarray, outputs: int = 1) -> np.ndarray:
    """The boosters' starting point: ``log(MAdds + WORK_BYTES_WEIGHT * bytes moved + WORK_FLOOR)`` per row.

    The trees then learn the log of latency per unit of work, which varies far
    less than latency itself, and a kernel outside the training data falls back
    on its work rather than on its nearest leaf (kernel level within ±10% on the
    session-6 held-out keys: 34% without, 62% with; see docs/latency.md).
    """
    names = FEATURES
    work = x[:, names.index("madds")] + WORK_BYTES_WEIGHT * (x[:, names.index("bytes_read")]
                                                             + x[:, names.index("bytes_written")])
    margin = np.log(work.astype(np.float64) + WORK_FLOOR)
    return margin if outputs == 1 else np.repeat(margin[:, None], outputs, axis=1)


def _outputs(params: dict) -> int:
    alpha = params.get("quantile_alpha")
    return len(alpha) if isinstance(alpha, (list, tuple)) else 1


def _train(params: dict, x: np.ndarray, y: np.ndarray, rounds: int = ROUNDS):
    import xgboost as xgb

    d = xgb.DMatrix(x, label=y, base_margin=work_margin(x, _outputs(params)), feature_names=list(FEATURES))
    return xgb.train(params, d, num_boost_round=rounds)


def _predict(booster, x: np.ndarray, outputs: int = 1) -> np.ndarray:
    """Predictions for the rows of ``x`` (columns in :data:`FEATURES` order), without building a DMatrix."""
    return np.asarray(booster.inplace_predict(x, base_margin=work_margin(x, outputs)))


@dataclass
class Predictor:
    """Kernel latency model of one target and regime (see the module docstring)."""

    target: str
    regime: str
    fingerprint: str
    mode: str
    point: dict[str, Any]  # "" -> global booster; op kind -> booster (per_kind mode)
    interval: Any
    overhead: Overhead
    rows: int
    trials_per_kernel: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reference: ReferenceState | None = None  # the state its latencies are scaled to (hwface.latency.reference)

    def predict_log(self, keys: list[LayerKey]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``log(latency_us)``: point, p10 and p90 per key (one XGBoost call per model)."""
        if not keys:
            empty = np.zeros(0)
            return empty, empty, empty
        x = feature_matrix(keys)
        point = _point_predict(self.point, keys, x)
        q = _predict(self.interval, x, len(QUANTILES)).reshape(len(keys), len(QUANTILES))
        low = np.minimum(q[:, 0], point)
        high = np.maximum(q[:, 1], point)
        return point, low, high

    def predict_us(self, keys: list[LayerKey]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Latency in microseconds: point, p10 and p90 per key."""
        p, lo, hi = self.predict_log(keys)
        return np.exp(p), np.exp(lo), np.exp(hi)

    # -- files ------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the boosters (UBJSON) and the sidecar into ``folder``; returns it."""
        import xgboost as xgb

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for kind, booster in self.point.items():
            name = f"point.{kind or 'all'}.ubj"
            booster.save_model(str(folder / name))
            files[kind] = name
        self.interval.save_model(str(folder / "interval.ubj"))
        sidecar = {
            "target": self.target, "regime": self.regime, "fingerprint": self.fingerprint, "mode": self.mode,
            "features": list(FEATURES), "feature_version": FEATURE_VERSION,
            "margin": f"log(madds + {WORK_BYTES_WEIGHT} * bytes + {WORK_FLOOR})", "rows": self.rows, "trials_per_kernel": self.trials_per_kernel,
            "xgboost_version": xgb.__version__, "point_models": files, "interval_model": "interval.ubj",
            "quantiles": list(QUANTILES), "overhead": self.overhead.__dict__, "metrics": self.metrics,
            "reference_state": self.reference.to_dict() if self.reference else None,
        }
        (folder / SIDECAR).write_text(json.dumps(sidecar, indent=2, sort_keys=True))
        for old in set(folder.glob("point.*.ubj")) - {folder / name for name in files.values()}:
            old.unlink()  # a previous mode's per-kind models, once the sidecar no longer names them
        return folder

    @classmethod
    def load(cls, folder: str | Path, fingerprint: str | None = None) -> "Predictor":
        """Read a saved predictor, checking its features and (when given) its data fingerprint.

        Raises
        ------
        PredictorError
            Missing or corrupt files, other features, or another fingerprint.
        """
        import xgboost as xgb

        folder = Path(folder)
        retrain = "retrain with `hwface predictor train --target {t} --regime {r}`"
        try:
            side = json.loads((folder / SIDECAR).read_text())
            t, r = side["target"], side["regime"]
            if side["features"] != list(FEATURES) or side.get("feature_version", 1) != FEATURE_VERSION \
                    or side.get("margin") != f"log(madds + {WORK_BYTES_WEIGHT} * bytes + {WORK_FLOOR})":
                raise PredictorError(f"predictor {folder} was trained on other features than this hwface computes: "
                                     + retrain.format(t=t, r=r))
            if fingerprint is not None and side["fingerprint"] != fingerprint:
                raise PredictorError(f"predictor {folder} was trained on data of fingerprint {side['fingerprint']}, "
                                     f"today's is {fingerprint}: " + retrain.format(t=t, r=r))
            point = {}
            for kind, name in side["point_models"].items():
                point[kind] = xgb.Booster(model_file=str(folder / name))
            interval = xgb.Booster(model_file=str(folder / side["interval_model"]))
            state = side.get("reference_state")
            return cls(side["target"], side["regime"], side["fingerprint"], side["mode"], point, interval,
                       Overhead(**side["overhead"]), side["rows"], side.get("trials_per_kernel"),
                       side.get("metrics", {}), ReferenceState(**state) if state else None)
        except FileNotFoundError as exc:
            raise PredictorError(f"no trained predictor at {folder} ({Path(exc.filename or '').name} missing): "
                                 "train one with `hwface predictor train`") from None
        except (json.JSONDecodeError, KeyError, TypeError, xgb.core.XGBoostError) as exc:
            raise PredictorError(f"corrupt predictor at {folder}: {type(exc).__name__}: "
                                 f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}; "
                                 "retrain with `hwface predictor train`") from None


def _point_predict(models: dict[str, Any], keys: list[LayerKey], x: np.ndarray) -> np.ndarray:
    """Point predictions (log us): the global model, replaced by the kind's own model where there is one."""
    point = _predict(models[""], x)
    ops = np.array([k.op for k in keys])
    for kind, booster in models.items():
        rows = np.flatnonzero(ops == kind) if kind else np.zeros(0, dtype=int)
        if rows.size:
            point[rows] = _predict(booster, x[rows])
    return point


def _holdout_split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng(seed).permutation(n)
    cut = max(1, n // 5)
    return idx[cut:], idx[:cut]


def _fit_point(mode: str, keys: list[LayerKey], x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    models = {"": _train(POINT_PARAMS, x, y)}
    if mode == "per_kind":
        ops = np.array([k.op for k in keys])
        for kind in sorted(set(ops)):
            rows = np.flatnonzero(ops == kind)
            if rows.size >= MIN_KIND_ROWS:
                models[kind] = _train(POINT_PARAMS, x[rows], y[rows])
    return models


def choose_mode(keys: list[LayerKey], y_log: np.ndarray, seed: int = 0) -> tuple[str, dict[str, float]]:
    """Fit both modes on four fifths of the keys, compare their RMSPE on the last fifth; the better and both scores."""
    from hwface.latency.metrics import accuracy

    x = feature_matrix(keys)
    fit, val = _holdout_split(len(keys), seed)
    scores = {}
    for mode in MODES:
        models = _fit_point(mode, [keys[i] for i in fit], x[fit], y_log[fit])
        pred = _point_predict(models, [keys[i] for i in val], x[val])
        scores[mode] = accuracy(np.exp(pred), np.exp(y_log[val]))["rmspe"]
    best = min(MODES, key=lambda m: scores[m])
    return best, scores


def train_predictor(frame, networks, target: str, regime: str, fingerprint: str, mode: str | None = None,
                    trials_per_kernel: int | None = None) -> Predictor:
    """Fit the point, interval and overhead models.

    Parameters
    ----------
    frame : DataFrame
        Current training rows (``key``, ``median_us``, ``reference``), held-out rows excluded; their
        latencies are scaled to the median reference state first (:mod:`hwface.latency.reference`).
    networks : DataFrame
        Current training networks (``kernel_sum_us``, ``median_us``, ``kernel_calls``) for the overhead.
    mode : str, optional
        ``global`` or ``per_kind``; default: the better on a held-back fifth (:func:`choose_mode`).

    Raises
    ------
    PredictorError
        Too few rows to train.
    """
    state = canonical_state(frame)
    frame, networks = normalized_rows(frame, state), normalized_networks(networks, state)
    keys, lat = training_table(frame)
    if len(keys) < 20:
        raise PredictorError(f"only {len(keys)} distinct current layer keys for {target}/{regime}: measure more "
                             f"(`hwface sample --target {target} --regime {regime}`)")
    y = np.log(lat)
    scores: dict[str, float] = {}
    if mode is None:
        mode, scores = choose_mode(keys, y)
    x = feature_matrix(keys)
    point = _fit_point(mode, keys, x, y)
    interval = _train(QUANTILE_PARAMS, x, y)
    overhead = Overhead(0.0, 0.0) if networks.empty else fit_overhead(
        networks["kernel_sum_us"], networks["median_us"], networks["kernel_calls"],
        [network_weight_mb(k) for k in networks["kernels"]])
    metrics = {"mode_rmspe_on_held_back_fifth": scores, "distinct_keys": len(keys)}
    return Predictor(target, regime, fingerprint, mode, point, interval, overhead, len(frame), trials_per_kernel,
                     metrics, state)


def predictor_dir(target: str, regime: str, fingerprint: str, write: bool = False) -> Path:
    """``<latency db folder>/<target>.<regime>.<fingerprint digest>.predictor`` (one per device and pipeline).

    With ``write``, the folder a training writes (the user's); else the one read:
    the user's when it exists, else the shipped one (:mod:`hwface.data_dirs`).
    """
    from hwface import data_dirs
    from hwface.latency.store import db_dir

    name = f"{target}.{regime}.{fingerprint}.predictor"
    found = [] if write else [d / name for d in data_dirs.read_dirs("latency_db") if (d / name).is_dir()]
    return found[0] if found else db_dir() / name
