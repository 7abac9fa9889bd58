"""Once-for-all's arch dicts as hwface arch specs, so OFA-style search code can ask hwface for latency.

OFA's MobileNetV3 space describes a network as ``{"ks": [...], "e": [...],
"d": [...], "r": [...]}``: per block a depthwise kernel (3/5/7) and an expansion
ratio (3/4/6), ``MAX_DEPTH`` block slots per stage of which the first ``d[i]``
are used, and the input resolution. :func:`ofa_to_spec` lays that over
:data:`OFA_SKELETON`, hwface's face-recognition stage plan (the widths and
strides of :data:`hwface.nas.space.DEFAULT_PLAN` at 112x112) with OFA
MobileNetV3's pattern of SE and activations per stage. Consecutive blocks of one
stage with the same kernel and expansion become one :class:`StageSpec`; the
others become stride-1 stages of the same width, which build the same blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwface.nas.spec import ArchSpec, ArchSpecError, HeadSpec, StageSpec, StemSpec

MAX_DEPTH = 4
OFA_KERNELS = (3, 5, 7)
OFA_EXPANSIONS = (3, 4, 6)


@dataclass(frozen=True)
class OfaStage:
    """One stage of the skeleton: width (channels), stride of its first block, SE, activation."""

    width: int
    stride: int
    se: bool
    act: str


OFA_SKELETON = (
    OfaStage(32, 1, False, "relu"),
    OfaStage(64, 2, True, "relu"),
    OfaStage(96, 2, False, "hardswish"),
    OfaStage(128, 1, True, "hardswish"),
    OfaStage(160, 2, True, "hardswish"),
)
OFA_STEM = StemSpec(32, "hardswish", False)
OFA_HEAD = HeadSpec("gdconv", 512, "hardswish", "conv")
OFA_EMBEDDING = 128


def _resolution(arch: dict[str, Any], problems: list[str]) -> int:
    r = arch.get("r", 112)
    r = r[0] if isinstance(r, (list, tuple)) and len(r) == 1 else r
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        problems.append(f"r: {r!r} is not a positive integer (or a list of one)")
        return 112
    return r


def _lists(arch: dict[str, Any], n_stages: int, problems: list[str]) -> tuple[list, list, list]:
    slots = n_stages * MAX_DEPTH
    checks = (("ks", slots, OFA_KERNELS), ("e", slots, OFA_EXPANSIONS), ("d", n_stages, tuple(range(1, MAX_DEPTH + 1))))
    out = []
    for name, length, allowed in checks:
        v = arch.get(name)
        if not isinstance(v, (list, tuple)) or len(v) != length:
            problems.append(f"{name}: needs a list of {length} values from {allowed}")
            out.append([allowed[0]] * length)
        elif any(x not in allowed or isinstance(x, bool) for x in v):
            problems.append(f"{name}: values must be in {allowed}, got {sorted(set(v) - set(allowed), key=str)}")
            out.append([allowed[0]] * length)
        else:
            out.append(list(v))
    return out[0], out[1], out[2]


def ofa_to_spec(arch: dict[str, Any], skeleton: tuple[OfaStage, ...] = OFA_SKELETON) -> ArchSpec:
    """The arch spec of an OFA-shaped arch dict on ``skeleton``.

    Raises
    ------
    ArchSpecError
        A missing key or a value outside OFA's choices (each named).
    """
    if not isinstance(arch, dict):
        raise ArchSpecError([f"arch: an OFA arch is a dict with ks, e, d (and r), got {type(arch).__name__}"])
    problems: list[str] = []
    r = _resolution(arch, problems)
    ks, e, d = _lists(arch, len(skeleton), problems)
    if problems:
        raise ArchSpecError(problems)
    stages: list[StageSpec] = []
    for i, plan in enumerate(skeleton):
        blocks = [(ks[i * MAX_DEPTH + j], float(e[i * MAX_DEPTH + j])) for j in range(d[i])]
        for j, (k, x) in enumerate(blocks):
            last = stages[-1] if j else None
            if last is not None and (last.kernel, last.expansion) == (k, x):
                stages[-1] = StageSpec("mbconv", plan.width, last.depth + 1, last.stride, k, x, plan.se, plan.act,
                                       last.se_placement)
                continue
            stages.append(StageSpec("mbconv", plan.width, 1, plan.stride if j == 0 else 1, k, x, plan.se, plan.act,
                                    "pre" if plan.se else None))
    return ArchSpec((r, r), OFA_STEM, tuple(stages), OFA_HEAD, OFA_EMBEDDING)
