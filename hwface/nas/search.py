"""Latency-aware architecture search: regularized evolution (or random search) under a predicted latency budget.

hwface trains no face model, so the objective is a *capacity proxy*: the
network's multiply-adds (more compute at the same latency is what the papers
trade for accuracy), maximized subject to ``predicted latency <= budget``. Every
candidate is answered by a :class:`~hwface.nas.lookup.LatencyModel` from its
planned kernels (no TVM), so a search of a thousand candidates takes seconds.

Regularized evolution (Real et al., 2019, "aging evolution"): a population of
``population`` random specs; each step samples ``tournament`` members, mutates
the fittest (one stage, the stem or the head redrawn from the space), adds the
child and removes the oldest member. ``generations`` counts rounds of
``population`` steps. Random search draws the same number of specs.
"""

from __future__ import annotations

import collections
import functools
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from hwface.errors import HwfaceError
from hwface.latency.features import key_madds
from hwface.latency.key import LayerKey
from hwface.nas.space import DEFAULT_SPACE, SearchSpace, draw_head, draw_stage, draw_arch
from hwface.nas.spec import ArchSpec, ArchSpecError, StemSpec

STRATEGIES = ("evolution", "random")


@dataclass(frozen=True)
class Candidate:
    """A spec with its predicted latency (microseconds, p10-p90) and its proxy (multiply-adds)."""

    spec: ArchSpec
    latency_us: float
    low_us: float
    high_us: float
    madds: int
    measured_kernels: int
    predicted_kernels: int

    def fits(self, budget_us: float) -> bool:
        return self.latency_us <= budget_us


@dataclass
class SearchResult:
    """What a search found: the Pareto front (latency up, MAdds up), the best within budget, counts, seconds."""

    strategy: str
    budget_us: float
    evaluated: int
    within_budget: int
    front: list[Candidate]
    best: list[Candidate]
    seconds: float
    history: list[float] = field(default_factory=list)  # best proxy within budget after each round


@functools.lru_cache(maxsize=100_000)
def _key_madds(key: str) -> int:
    return key_madds(LayerKey.from_str(key))


def candidate_of(model, spec: ArchSpec) -> Candidate:
    """``spec`` answered by ``model``: planned kernels, measured-first latency, MAdds summed over the kernels."""
    from hwface.latency.estimate import estimate_network

    _, kernels = model.kernels_of(spec)
    est = estimate_network(kernels, model.lookup)
    madds = sum(_key_madds(k) * n for k, n in kernels)
    return Candidate(spec, est.total_us, est.low_us, est.high_us, madds, est.measured_kernels, est.predicted_kernels)


def mutate(spec: ArchSpec, space: SearchSpace, rng: random.Random, tries: int = 20) -> ArchSpec:
    """A valid child of ``spec``: one stage, the stem or the head redrawn from ``space``."""
    for _ in range(tries):
        part = rng.randrange(len(spec.stages) + 2)
        stages, stem, head, embedding = list(spec.stages), spec.stem, spec.head, spec.embedding
        if part < len(stages):
            stages[part] = draw_stage(space, space.stages[part], rng)
        elif part == len(stages):
            stem = StemSpec(rng.choice(space.widths(space.stem_base_width)), rng.choice(space.acts),
                            rng.choice(space.stem_dwconv))
        if part == len(stages) + 1 or part == len(stages) - 1:
            head, embedding = draw_head(space, stages[-1], rng)
        try:
            return ArchSpec(spec.input_size, stem, tuple(stages), head, embedding)
        except ArchSpecError:
            continue
    return draw_arch(space, rng)


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    """Candidates no other beats on both latency (lower) and MAdds (higher), by latency."""
    front: list[Candidate] = []
    for c in sorted(cands, key=lambda c: (c.latency_us, -c.madds)):
        if not front or c.madds > front[-1].madds:
            front.append(c)
    return front


def _fitness(c: Candidate, budget_us: float) -> tuple[int, float]:
    """Within budget beats over budget; then more MAdds, or (over budget) less latency."""
    return (1, c.madds) if c.fits(budget_us) else (0, -c.latency_us)


def search(evaluate: Callable[[ArchSpec], Candidate], budget_us: float, space: SearchSpace = DEFAULT_SPACE,
           strategy: str = "evolution", population: int = 64, generations: int = 20, tournament: int = 8,
           seed: int = 0, top: int = 10, progress: Callable[[int, int, str], None] | None = None) -> SearchResult:
    """Search ``space`` for the most MAdds under a predicted latency budget.

    Parameters
    ----------
    evaluate : callable
        ArchSpec -> Candidate (:func:`candidate_of` with a model).
    budget_us : float
        Predicted latency budget (microseconds).
    strategy : str
        ``evolution`` or ``random``; both evaluate ``population * (generations + 1)`` specs.
    population, generations, tournament : int
    seed : int
        The same arguments and seed give the same result.
    top : int
        How many of the best within budget to return.

    Raises
    ------
    HwfaceError
        Unknown strategy or a non-positive size or budget.
    """
    if strategy not in STRATEGIES:
        raise HwfaceError(f"strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    if budget_us <= 0 or population < 2 or generations < 0 or not 1 <= tournament <= population:
        raise HwfaceError("need budget > 0, population >= 2, generations >= 0, 1 <= tournament <= population")
    t0 = time.perf_counter()
    rng = random.Random(seed)
    seen: dict[str, Candidate] = {}

    def ask(spec: ArchSpec) -> Candidate:
        text = spec.to_json(indent=None)
        if text not in seen:
            seen[text] = evaluate(spec)
        return seen[text]

    pop = collections.deque(ask(draw_arch(space, rng)) for _ in range(population))
    history = [_best_madds(pop, budget_us)]
    for g in range(generations):
        for _ in range(population):
            if strategy == "random":
                ask(draw_arch(space, rng))
                continue
            parent = max(rng.sample(list(pop), tournament), key=lambda c: _fitness(c, budget_us))
            pop.append(ask(mutate(parent.spec, space, rng)))
            pop.popleft()
        history.append(_best_madds(seen.values(), budget_us))
        if progress:
            progress(g + 1, generations, f"{len(seen)} specs, best within budget {history[-1] / 1e6:.1f} M MAdds")
    cands = list(seen.values())
    fits = sorted((c for c in cands if c.fits(budget_us)), key=lambda c: -c.madds)
    return SearchResult(strategy, budget_us, len(cands), len(fits), pareto_front(cands), fits[:top],
                        time.perf_counter() - t0, history)


def _best_madds(cands, budget_us: float) -> float:
    return float(max((c.madds for c in cands if c.fits(budget_us)), default=0))
