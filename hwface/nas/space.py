"""The search space as data, and seeded sampling of arch specs from it.

A :class:`SearchSpace` fixes the stage plan (per stage: base width, stride,
depth range) and the choices per stage (block, kernel, expansion, SE and its
placement, activation, Seesaw skip branch), the stem and the head. Widths are
drawn on multiples of :attr:`SearchSpace.width_multiple` between
``width_range[0]`` and ``width_range[1]`` times the stage's base width, so
held-out networks carry channel counts the zoo never had (zoo widths are 32, 48,
64, 96, 104, 128, 144, 192, 200, 256). Each block kind draws only what its zoo
class can build (``mfn_bottleneck``: kernel 3, no SE; Seesaw: SE-Pre only).

:func:`sample_arch` is reproducible: the same space and seed give the same spec
on every machine (Python's :class:`random.Random`); draws above
:attr:`SearchSpace.max_madds` are redrawn from the same stream.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hwface.errors import HwfaceError
from hwface.nas.spec import (
    ACTS,
    BLOCKS,
    HEAD_KINDS,
    KERNELS,
    PROJECTIONS,
    SE_PLACEMENTS,
    SEESAW_BLOCKS,
    SKIPS,
    ArchSpec,
    HeadSpec,
    StageSpec,
    StemSpec,
)


class SearchSpaceError(HwfaceError, ValueError):
    """A search space with an empty or unknown choice, or one whose draws never fit the compute limit."""


@dataclass(frozen=True)
class StagePlan:
    """One stage of the plan: base width (channels), stride of its first block, depth range (inclusive)."""

    base_width: int
    stride: int
    min_depth: int
    max_depth: int


# A MobileFaceNet / FR-MBConv shaped plan at 112x112: 56 -> 56 -> 28 -> 14 -> 14 -> 7 px, total stride 16.
DEFAULT_PLAN = (
    StagePlan(32, 1, 1, 2),
    StagePlan(64, 2, 1, 5),
    StagePlan(96, 2, 1, 6),
    StagePlan(128, 1, 1, 4),
    StagePlan(160, 2, 1, 4),
)


@dataclass(frozen=True)
class SearchSpace:
    """The choices :func:`sample_arch` draws from.

    Attributes
    ----------
    input_size : (int, int)
        Input (H, W) in pixels of every sampled network.
    stages : tuple of StagePlan
        Stage plan; the total stride is 2 (stem) times the product of the strides.
    blocks, kernels, expansions, acts : tuples
        Per-stage choices (kernels and SE are limited per block kind, see the module docstring).
    se : tuple of bool
        SE on/off choices; ``se_placements`` the placements drawn when on.
    seesaw_skips : tuple of str
        Skip-branch choices of a Seesaw stage with stride 2.
    stem_base_width : int
        Base width of the stem (drawn like a stage width); ``stem_dwconv`` its choices.
    head_kinds, head_conv_widths, projections, embeddings : tuples
        Head choices; ``fc`` and ``s2fc`` heads always project with ``fc``.
    width_range : (float, float)
        Widths are drawn in [lo x base, hi x base].
    width_multiple : int
        Widths are multiples of this (channels).
    max_madds : float
        Sampled networks above this many multiply-adds at ``input_size`` are redrawn.
    max_tries : int
        Draws before :func:`sample_arch` gives up.
    """

    input_size: tuple[int, int] = (112, 112)
    stages: tuple[StagePlan, ...] = DEFAULT_PLAN
    blocks: tuple[str, ...] = BLOCKS
    kernels: tuple[int, ...] = KERNELS
    expansions: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 6.0)
    acts: tuple[str, ...] = ACTS
    se: tuple[bool, ...] = (False, True)
    se_placements: tuple[str, ...] = SE_PLACEMENTS
    seesaw_skips: tuple[str, ...] = SKIPS
    stem_base_width: int = 48
    stem_dwconv: tuple[bool, ...] = (False, True)
    head_kinds: tuple[str, ...] = HEAD_KINDS
    head_conv_widths: tuple[int | None, ...] = (None, 256, 512)
    projections: tuple[str, ...] = PROJECTIONS
    embeddings: tuple[int, ...] = (128, 256, 512)
    width_range: tuple[float, float] = (0.5, 1.5)
    width_multiple: int = 8
    max_madds: float = 600e6
    max_tries: int = 100

    def __post_init__(self) -> None:
        _check_space(self)

    def widths(self, base: int) -> tuple[int, ...]:
        """Widths (channels) drawn for a base width: multiples of ``width_multiple`` in the width range."""
        m = self.width_multiple
        lo = max(m, math.ceil(self.width_range[0] * base / m) * m)
        hi = math.floor(self.width_range[1] * base / m) * m
        return tuple(range(lo, hi + 1, m))


def _check_space(space: SearchSpace) -> None:
    problems = []
    known = {"blocks": BLOCKS, "kernels": KERNELS, "acts": ACTS, "se_placements": SE_PLACEMENTS,
             "head_kinds": HEAD_KINDS, "projections": PROJECTIONS, "seesaw_skips": SKIPS}
    for name in ("blocks", "kernels", "expansions", "acts", "se", "se_placements", "seesaw_skips", "stem_dwconv",
                 "head_kinds", "head_conv_widths", "projections", "embeddings", "stages"):
        values = getattr(space, name)
        if not values:
            problems.append(f"{name}: empty")
        elif name in known and not set(values) <= set(known[name]):
            problems.append(f"{name}: {sorted(set(values) - set(known[name]))} unknown; allowed: {known[name]}")
    if space.width_multiple <= 0 or not 0 < space.width_range[0] <= space.width_range[1]:
        problems.append("width_range / width_multiple: need 0 < lo <= hi and a positive multiple")
    else:
        for i, plan in enumerate(space.stages):
            if not space.widths(plan.base_width):
                problems.append(f"stages[{i}].base_width: no multiple of {space.width_multiple} in the width range")
            if not 1 <= plan.min_depth <= plan.max_depth:
                problems.append(f"stages[{i}]: need 1 <= min_depth <= max_depth")
    if problems:
        raise SearchSpaceError("invalid search space: " + "; ".join(problems))


DEFAULT_SPACE = SearchSpace()


def draw_stage(space: SearchSpace, plan: StagePlan, rng: random.Random) -> StageSpec:
    """One stage: block first, then only the options that block's zoo class has."""
    block = rng.choice(space.blocks)
    width = rng.choice(space.widths(plan.base_width))
    depth = rng.randint(plan.min_depth, plan.max_depth)
    expansion = rng.choice(space.expansions)
    act = rng.choice(space.acts)
    kernel = 3 if block == "mfn_bottleneck" else rng.choice(space.kernels)
    se = False if block == "mfn_bottleneck" else rng.choice(space.se)
    placement = None
    if se:
        placement = "pre" if block in SEESAW_BLOCKS else rng.choice(space.se_placements)
    skip = "none"
    if block in SEESAW_BLOCKS and plan.stride == 2:
        skip = rng.choice(space.seesaw_skips)
    return StageSpec(block, width, depth, plan.stride, kernel, expansion, se, act, se_placement=placement, skip=skip)


def draw_head(space: SearchSpace, last: StageSpec, rng: random.Random) -> tuple[HeadSpec, int]:
    kind = rng.choice(space.head_kinds)
    conv_width = rng.choice(space.head_conv_widths)
    act = rng.choice(space.acts) if conv_width else last.act  # unused without the conv: keep specs canonical
    last_width = last.width
    projection = "fc" if kind in ("fc", "s2fc") else rng.choice(space.projections)
    embedding = rng.choice(space.embeddings)
    if projection == "none":
        embedding = conv_width or last_width
    return HeadSpec(kind, conv_width, act, projection), embedding


def draw_arch(space: SearchSpace, rng: random.Random) -> ArchSpec:
    """One spec drawn from ``space`` with ``rng`` (no compute limit; see :func:`sample_arch`)."""
    stem = StemSpec(rng.choice(space.widths(space.stem_base_width)), rng.choice(space.acts),
                    rng.choice(space.stem_dwconv))
    stages = tuple(draw_stage(space, plan, rng) for plan in space.stages)
    head, embedding = draw_head(space, stages[-1], rng)
    return ArchSpec(tuple(space.input_size), stem, stages, head, embedding)


def spec_madds(spec: ArchSpec) -> int:
    """Multiply-adds of the spec's network for one input of ``spec.input_size``, counted by :mod:`hwface.analysis`."""
    from hwface.analysis import layer_table
    from hwface.nas.build import build_untrained

    return sum(r.madds for r in layer_table(build_untrained(spec), spec.input_size))


def sample_arch(space: SearchSpace = DEFAULT_SPACE, seed: int = 0) -> ArchSpec:
    """A random arch spec from ``space``, reproducible by ``seed``, within ``space.max_madds``.

    Parameters
    ----------
    space : SearchSpace
    seed : int
        The same (space, seed) gives the same spec.

    Returns
    -------
    ArchSpec
        Valid by construction; its network has at most ``space.max_madds`` MAdds
        at ``space.input_size``.

    Raises
    ------
    SearchSpaceError
        When ``space.max_tries`` draws all exceed the compute limit.
    """
    rng = random.Random(seed)
    for _ in range(space.max_tries):
        spec = draw_arch(space, rng)
        if spec_madds(spec) <= space.max_madds:
            return spec
    raise SearchSpaceError(f"no draw of {space.max_tries} (seed {seed}) fits max_madds = {space.max_madds:.3g}; "
                           "narrow the space or raise the limit")
