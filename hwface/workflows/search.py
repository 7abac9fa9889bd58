"""`hwface search`: a latency-aware search on a LatencyModel, and the verification of its winners on the device.

The search (:func:`hwface.nas.search.search`) answers every candidate from the
model (planned kernels, no TVM). ``verify`` then builds the best ``K`` within
budget through the real pipeline, measures them end to end and per kernel on
the target under the drift guard (:func:`hwface.workflows.networks.measure_networks`),
stores them as held-out networks (origin ``search``: never trained on) and sets
predicted beside measured.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hwface.errors import HwfaceError

SPACES = ("default",)


@dataclass
class Verified:
    """One verified winner: predicted (with interval) and measured end-to-end latency, microseconds."""

    name: str
    predicted_us: float
    low_us: float
    high_us: float
    measured_us: float | None
    madds: int

    @property
    def error(self) -> float | None:
        return None if self.measured_us is None else self.predicted_us / self.measured_us - 1.0


@dataclass
class SearchReport:
    """The search result, the model that answered, and the verified winners (if asked)."""

    target: str
    regime: str
    fingerprint: str
    budget_us: float
    result: Any
    verified: list[Verified] = field(default_factory=list)
    verify_failed: list[str] = field(default_factory=list)


def search_name(spec) -> str:
    """Stored name of a verified spec: ``search-`` and 10 hex digits of its JSON."""
    return "search-" + hashlib.sha256(spec.to_json(indent=None).encode()).hexdigest()[:10]


def budget_of(model, budget_ms: float | None, budget_model: str | None) -> float:
    """The budget in microseconds: ``budget_ms``, or the predicted latency of the zoo network ``budget_model``."""
    if (budget_ms is None) == (budget_model is None):
        raise HwfaceError("give exactly one of --budget-ms and --budget-model")
    if budget_model is not None:
        return model.network(budget_model).total_us
    if budget_ms <= 0:
        raise HwfaceError(f"--budget-ms {budget_ms}: must be positive")
    return budget_ms * 1e3


def run_search(target: str = "host", regime: str = "default", budget_ms: float | None = None,
               budget_model: str | None = None, space: str = "default", strategy: str = "evolution",
               population: int = 64, generations: int = 20, seed: int = 0, verify: int = 0,
               fingerprint: str | None = None, progress: Callable[[str], None] | None = None) -> SearchReport:
    """Search, then (``verify > 0``) measure the best ``verify`` within budget on the target.

    Raises
    ------
    HwfaceError
        Unknown space, bad sizes or budget, no trained predictor, or ``verify``
        with another device's data (verification measures this machine's device).
    """
    from hwface.latency.lookup import resolve_fingerprint
    from hwface.nas.lookup import LatencyModel
    from hwface.nas.search import candidate_of, search
    from hwface.nas.space import DEFAULT_SPACE
    from hwface.targets import load_target

    if space not in SPACES:
        raise HwfaceError(f"--space {space!r}: one of {', '.join(SPACES)}")
    if verify < 0:
        raise HwfaceError("--verify must be 0 or more")
    spec = load_target(target)
    if verify and resolve_fingerprint(spec, fingerprint) != resolve_fingerprint(spec):
        raise HwfaceError(f"--verify measures {spec.name} as this machine has it, but --fingerprint {fingerprint} "
                          "answers for another device's data: drop one of them")
    model = LatencyModel.load(target, regime, fingerprint)
    budget = budget_of(model, budget_ms, budget_model)
    say = progress or (lambda msg: None)
    result = search(lambda s: candidate_of(model, s), budget, DEFAULT_SPACE, strategy, population, generations,
                    seed=seed, progress=lambda g, n, msg: say(f"generation {g}/{n}: {msg}"))
    report = SearchReport(spec.name, regime, model.fingerprint, budget, result)
    if verify:
        _verify(report, spec, regime, result.best[:verify], say)
    return report


def _verify(report: SearchReport, spec, regime: str, winners, say: Callable[[str], None]) -> None:
    from hwface.latency.store import LatencyStore
    from hwface.nas import export_spec
    from hwface.workflows.networks import NetworkJob, measure_networks

    if regime != "default":
        raise HwfaceError("--verify measures in the default regime only for now (the tuned regime tunes each "
                          "network first: not built yet)")
    work = Path(tempfile.mkdtemp(prefix="hwface-search-"))

    def args(c) -> dict[str, Any]:
        path = export_spec(c.spec, work / f"{search_name(c.spec)}.onnx").path
        return {"onnx_path": path, "split": "heldout", "origin": "search", "arch_spec": c.spec.to_dict()}

    jobs = [NetworkJob(search_name(c.spec), lambda c=c: args(c)) for c in winners]
    run = measure_networks(spec, regime, jobs, progress=say)
    report.verify_failed = run.failed
    from hwface.latency.predictor import Predictor, predictor_dir
    from hwface.latency.reference import normalized_networks

    state = Predictor.load(predictor_dir(spec.name, regime, report.fingerprint)).reference
    with LatencyStore.for_reading(spec.name) as db:
        nets = normalized_networks(db.networks_frame(fingerprint=report.fingerprint, regime=regime,
                                                     split="heldout"), state)
    measured = dict(zip(nets["name"], nets["median_us"])) if len(nets) else {}  # in the predictor's reference state
    report.verified = [Verified(search_name(c.spec), c.latency_us, c.low_us, c.high_us,
                                measured.get(search_name(c.spec)), c.madds) for c in winners]
