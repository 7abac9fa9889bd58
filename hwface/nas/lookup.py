"""`LatencyModel`: the one entry point for latency lookups (layers, networks, OFA-style arch dicts).

Kernels come first from the database (current rows of the fingerprint), then
from the XGBoost predictor (:class:`hwface.latency.lookup.KernelLookup`); a
network is its kernels plus the fitted overhead (per call, a share of the kernel sum, per MB of weights)
(:func:`hwface.latency.estimate.estimate_network`). A network can be

- an :class:`~hwface.nas.spec.ArchSpec` or its dict: its kernels come from the
  kernel planner (:func:`hwface.nas.plan.plan_kernels`, pure Python, no TVM);
- a zoo name: planned when the zoo network fits the spec grammar, else taken
  through the real pipeline once and remembered;
- an ONNX path: through the real pipeline once (seconds) and remembered.

It lives in :mod:`hwface.nas`, not :mod:`hwface.latency`, because it plans
specs and the planner reads the spec grammar (``nas`` sits above ``latency``).
One instance may serve many threads.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

from hwface.errors import HwfaceError
from hwface.latency.estimate import NetworkEstimate, estimate_network
from hwface.latency.key import LayerKey
from hwface.latency.lookup import KernelLookup, LayerAnswers
from hwface.nas.spec import ArchSpec

Network = Union[ArchSpec, dict, str, Path]
PLAN_CACHE = 4096  # planned specs remembered (about 10 KB each)


@dataclass(frozen=True)
class ModelInfo:
    """What answers: target, regime, data fingerprint, predictor mode, rows and measured keys, XGBoost version."""

    target: str
    regime: str
    fingerprint: str
    device: str
    mode: str
    training_rows: int
    measured_keys: int
    trials_per_kernel: int | None
    xgboost_version: str
    hwface_version: str


class LatencyModel:
    """Latency of layers and networks on one target and regime (see the module docstring).

    Build it with :meth:`load`.
    """

    def __init__(self, spec, regime: str, lookup: KernelLookup):
        self.spec = spec
        self.regime = regime
        self.lookup = lookup
        self._kernels: dict[Any, tuple[str, list[tuple[str, int]]]] = {}
        self._lock = threading.Lock()
        # a search revisits specs (parents, repeated queries): plan each once
        self._planned = functools.lru_cache(maxsize=PLAN_CACHE)(lambda arch: _plan(arch, spec))

    @classmethod
    def load(cls, target: str = "host", regime: str = "default", fingerprint: str | None = None) -> "LatencyModel":
        """The trained predictor and measured rows of ``target``/``regime``.

        Parameters
        ----------
        target : str
            Target name (``targets/<name>.toml``).
        regime : str
            ``default`` or ``tuned`` (the CLI's default too).
        fingerprint : str, optional
            Another device's data by digest (``hwface db stats``); default today's.

        Raises
        ------
        HwfaceError
            Unknown target, no trained predictor (says how to train), a corrupt one.
        """
        from hwface.latency.lookup import open_lookup
        from hwface.targets import load_target

        spec = load_target(target)
        return cls(spec, regime, open_lookup(spec, regime, fingerprint))

    @property
    def fingerprint(self) -> str:
        return self.lookup.predictor.fingerprint

    def info(self) -> ModelInfo:
        import xgboost

        from hwface import __version__
        from hwface.latency.store import LatencyStore

        pred = self.lookup.predictor
        with LatencyStore.for_reading(self.spec.name) as db:
            fields = db.fingerprints().get(pred.fingerprint)
        from hwface.latency.fingerprint import Fingerprint

        device = Fingerprint.from_dict(fields).describe() if fields else "unknown"
        return ModelInfo(self.spec.name, self.regime, pred.fingerprint, device, pred.mode, pred.rows,
                         len(self.lookup), pred.trials_per_kernel, xgboost.__version__, __version__)

    # -- layers -------------------------------------------------------------------
    def layer(self, key: LayerKey | str) -> dict:
        """One kernel: ``{key, latency_us, low_us, high_us, source}`` (``measured`` or ``predicted``)."""
        return self.lookup.layer(key)

    def layers(self, keys: Sequence[LayerKey | str]) -> LayerAnswers:
        """A batch of kernels: database hits by one lookup pass, misses by one XGBoost call."""
        return self.lookup.layers(keys)

    # -- networks -----------------------------------------------------------------
    def kernels_of(self, network: Network) -> tuple[str, list[tuple[str, int]]]:
        """``(name, [(key string, calls), ...])`` of a spec, spec dict, zoo name or ONNX path."""
        if isinstance(network, dict):
            network = ArchSpec.from_dict(network)
        if isinstance(network, ArchSpec):
            return "arch", self._planned(network)
        if isinstance(network, Path) or (isinstance(network, str) and network.endswith(".onnx")):
            path = Path(network).resolve()
            if not path.is_file():
                raise HwfaceError(f"no ONNX file at {path}")
            return self._remembered(("onnx", str(path), path.stat().st_mtime_ns), onnx=path)
        if isinstance(network, str):
            return self._zoo(network)
        raise HwfaceError(f"a network is an ArchSpec, a spec dict, a zoo name or an ONNX path, "
                          f"not {type(network).__name__}")

    def network(self, network: Network) -> NetworkEstimate:
        """Total, interval and per-kernel breakdown (microseconds) of a network; see :meth:`kernels_of`."""
        return estimate_network(self.kernels_of(network)[1], self.lookup)

    def get_efficiency(self, arch: dict) -> float:
        """Latency in milliseconds of a once-for-all arch dict (``ks``, ``e``, ``d``, ``r``): OFA's calling shape.

        The dict is laid over hwface's stage plan (:func:`hwface.nas.ofa.ofa_to_spec`).
        """
        from hwface.nas.ofa import ofa_to_spec

        return self.network(ofa_to_spec(arch)).total_us / 1e3

    def _zoo(self, name: str) -> tuple[str, list[tuple[str, int]]]:
        """A zoo network's kernels: planned from its spec where it fits the grammar, else the pipeline's; remembered."""
        from hwface.nas.zoo import zoo_spec

        key = ("zoo", name)
        if key not in self._kernels:
            arch = zoo_spec(name)  # an unknown name raises UnknownModelError (one line)
            if arch is None:
                return self._remembered(key, model=name)
            with self._lock:
                self._kernels[key] = (name, _plan(arch, self.spec))
        return self._kernels[key]

    def _remembered(self, key: tuple, **network) -> tuple[str, list[tuple[str, int]]]:
        """Kernels through the real pipeline, once per network (seconds), then from memory."""
        if key not in self._kernels:
            from hwface.nas.pipeline_kernels import pipeline_kernels

            found = pipeline_kernels(self.spec, **network)
            with self._lock:
                self._kernels[key] = found
        return self._kernels[key]


def _plan(arch: ArchSpec, spec) -> list[tuple[str, int]]:
    from hwface.nas.plan import plan_kernels

    return [(k if isinstance(k, str) else k.to_str(), int(n)) for k, n in plan_kernels(arch, spec)]
