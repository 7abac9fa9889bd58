"""Kernel-level latency lookups at NAS speed: measured rows first, the predictor for the rest, cached.

:class:`KernelLookup` holds one device's current measured table (one number per
layer key: the median of its training rows) as NumPy arrays indexed by key
string, and the :class:`~hwface.latency.predictor.Predictor` of the same
fingerprint. :meth:`KernelLookup.layers` answers a batch with one dictionary
pass for the measured keys and one XGBoost call for the rest; a predicted key is
remembered (the model is deterministic), so a search that revisits kernels pays
the model once per distinct key. Readers may share one instance across threads.

The network-level combination (kernels + overhead, and the interval)
is :func:`hwface.latency.estimate.estimate_network`; this module only answers kernels.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hwface.errors import HwfaceError
from hwface.latency.key import LayerKey

MEASURED = "measured"
PREDICTED = "predicted"
CACHE_LIMIT = 200_000  # predicted keys remembered (about 40 MB); the cache is cleared when full


@dataclass(frozen=True)
class LayerAnswers:
    """Answers for a batch of keys, in the order asked: latency of one call and its p10-p90 band (microseconds).

    Attributes
    ----------
    keys : list of str
    latency_us, low_us, high_us : numpy.ndarray of float64
    measured : numpy.ndarray of bool
        True where the number is the database's, False where the predictor's.
    """

    keys: list[str]
    latency_us: np.ndarray
    low_us: np.ndarray
    high_us: np.ndarray
    measured: np.ndarray

    def source(self, i: int) -> str:
        return MEASURED if self.measured[i] else PREDICTED

    def to_records(self) -> list[dict]:
        """One dict per key: key, latency_us, low_us, high_us, source."""
        return [{"key": k, "latency_us": float(v), "low_us": float(lo), "high_us": float(hi),
                 "source": MEASURED if m else PREDICTED}
                for k, v, lo, hi, m in zip(self.keys, self.latency_us, self.low_us, self.high_us, self.measured)]


class KernelLookup:
    """Measured-first kernel latencies of one target, regime and fingerprint.

    Parameters
    ----------
    frame : pandas.DataFrame
        Current training rows (``key``, ``median_us``, ``p10_us``, ``p90_us``) of the fingerprint.
    predictor : Predictor
        Trained on the same fingerprint.
    """

    def __init__(self, frame, predictor):
        self.predictor = predictor
        if len(frame):
            g = frame.groupby("key")
            keys = list(g.size().index)
            med, lo, hi = (g[c].median().to_numpy(dtype=float) for c in ("median_us", "p10_us", "p90_us"))
        else:
            keys, med, lo, hi = [], np.zeros(0), np.zeros(0), np.zeros(0)
        self._index = {k: i for i, k in enumerate(keys)}
        self._med, self._lo, self._hi = med, np.minimum(lo, med), np.maximum(hi, med)
        self._predicted: dict[str, tuple[float, float, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Measured keys."""
        return len(self._index)

    def get(self, key: str) -> tuple[float, float, float] | None:
        """The measured (median, p10, p90) of ``key`` in microseconds, or None."""
        i = self._index.get(key)
        return None if i is None else (float(self._med[i]), float(self._lo[i]), float(self._hi[i]))

    def layer(self, key: LayerKey | str) -> dict:
        """One kernel's answer: ``{key, latency_us, low_us, high_us, source}``."""
        return self.layers([key]).to_records()[0]

    def layers(self, keys: Sequence[LayerKey | str]) -> LayerAnswers:
        """Answers for a batch: database hits by one lookup pass, misses by one predictor call.

        Raises
        ------
        LayerKeyError
            A key string that does not parse (only misses are parsed).
        """
        strs = [k if isinstance(k, str) else k.to_str() for k in keys]
        idx = np.fromiter((self._index.get(k, -1) for k in strs), dtype=np.int64, count=len(strs))
        hit = idx >= 0
        out = [np.empty(len(strs)) for _ in range(3)]
        for arr, src in zip(out, (self._med, self._lo, self._hi)):
            arr[hit] = src[idx[hit]]
        miss = np.flatnonzero(~hit)
        if miss.size:
            answers = self._predict([strs[i] for i in miss])
            for arr, col in zip(out, range(3)):
                arr[miss] = [a[col] for a in answers]
        return LayerAnswers(strs, out[0], out[1], out[2], hit)

    def _predict(self, keys: list[str]) -> list[tuple[float, float, float]]:
        """Predicted (point, p10, p90) per key, from the cache or one predictor call for the new ones."""
        cache = self._predicted
        new = list(dict.fromkeys(k for k in keys if k not in cache))
        if new:
            point, low, high = self.predictor.predict_us([LayerKey.from_str(k) for k in new])
            with self._lock:
                if len(cache) + len(new) > CACHE_LIMIT:
                    cache.clear()
                cache.update({k: (float(p), float(lo), float(hi)) for k, p, lo, hi in zip(new, point, low, high)})
            fresh = dict(zip(new, zip(point, low, high)))
            return [cache.get(k) or fresh[k] for k in keys]
        return [cache[k] for k in keys]



def resolve_fingerprint(spec, fingerprint: str | None = None) -> str:
    """The data a command uses: today's fingerprint digest, or a stored one of ``spec``'s target.

    Parameters
    ----------
    fingerprint : str, optional
        A digest (or a unique prefix of one) from ``hwface db stats``: another
        device's data (the ``host`` of another CPU, say). Default: today's.

    Raises
    ------
    HwfaceError
        The digest names no stored fingerprint of the target, or several.
    """
    from hwface.latency.fingerprint import Fingerprint, current_fingerprint
    from hwface.latency.store import LatencyStore, read_path

    if not fingerprint:
        return current_fingerprint(spec).digest()
    stored: dict[str, dict] = {}
    if read_path(spec.name).exists():
        with LatencyStore.for_reading(spec.name) as db:
            stored = db.fingerprints()
    hits = [d for d in stored if d.startswith(fingerprint.lower())]
    if len(hits) != 1:
        known = ", ".join(f"{d} ({Fingerprint.from_dict(f).describe()})" for d, f in stored.items()
                          if f["tvm_target"] != "unrecorded") or "none"
        what = "matches several" if hits else "matches no"
        raise HwfaceError(f"--fingerprint {fingerprint} {what} fingerprint of {spec.name}'s data; stored: {known}")
    return hits[0]


def open_lookup(spec, regime: str, fingerprint: str | None = None, folder: str | Path | None = None) -> KernelLookup:
    """The saved predictor of ``spec``'s target and ``regime`` with the measured rows of its fingerprint.

    Parameters
    ----------
    spec : TargetSpec
    regime : str
        ``default`` or ``tuned``.
    fingerprint : str, optional
        See :func:`resolve_fingerprint` (default today's).
    folder : path, optional
        The predictor's folder (default :func:`~hwface.latency.predictor.predictor_dir`).

    Raises
    ------
    PredictorError
        No predictor, a corrupt one, or one of other features or data (one line, says how to train).
    """
    from hwface.latency.predictor import Predictor, predictor_dir
    from hwface.latency.store import LatencyStore

    digest = resolve_fingerprint(spec, fingerprint)
    pred = Predictor.load(folder or predictor_dir(spec.name, regime, digest), fingerprint=digest)
    from hwface.latency.reference import normalized_rows, undisturbed

    with LatencyStore.for_reading(spec.name) as db:
        frame, _ = db.current_frame(digest, regime, split="train")
    return KernelLookup(normalized_rows(undisturbed(frame)[0], pred.reference), pred)
