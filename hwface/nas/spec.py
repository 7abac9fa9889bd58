"""Arch specs: a network of the papers' block grammar as data (JSON), validated.

An :class:`ArchSpec` is a stem, a sequence of stages and an embedding head, the
grammar that MobileFaceNets, SeesawFaceNets and FR-MBConv share::

    stem     conv 3x3 stride 2 (+ BN + act) [+ depthwise (or grouped) 3x3 + BN + act]
    stages   rows (block, width, depth, stride, kernel, expansion, se, se_placement, act, skip)
    head     [1x1 conv + BN + act] -> global op (gdconv | gap | fc | s2fc) -> projection -> embedding

Every block is one of the zoo's classes (:data:`BLOCKS`); :func:`hwface.nas.build.build`
turns a spec into the PyTorch network. A spec is always valid: constructing one
(directly or with :meth:`ArchSpec.from_dict` / :meth:`ArchSpec.from_json`) checks
every field and raises one :class:`ArchSpecError` listing every problem, each
named by its field path (``stages[2].kernel``) with the allowed values.

This module imports neither torch nor the zoo, so specs can be read, checked and
written at CLI start-up speed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from hwface.errors import HwfaceError

FORMAT_VERSION = 1
MAX_BLOCKS = 64  # total blocks (sum of stage depths) of one network
MAX_EXPANSION = 8.0  # largest expansion ratio (hidden / input channels)
STEM_STRIDE = 2

BLOCKS = ("mbconv", "frmbconv", "mfn_bottleneck", "seesaw_shuffle", "seesaw_share")
SEESAW_BLOCKS = ("seesaw_shuffle", "seesaw_share")
KERNELS = (3, 5, 7)
STRIDES = (1, 2)
ACTS = ("prelu", "relu", "swish", "hardswish")
SE_PLACEMENTS = ("pre", "post")
SKIPS = ("none", "pool_conv")
HEAD_KINDS = ("gdconv", "gap", "fc", "s2fc")
PROJECTIONS = ("conv", "fc", "none")
SEESAW_CHANNEL_MULTIPLE = 4  # Seesaw's uneven 1/4 : 3/4 groups
S2FC_MIN_MAP = 3  # the s2fc head's 3x3 stride-2 depthwise conv has no padding


class ArchSpecError(HwfaceError, ValueError):
    """An invalid arch spec; ``problems`` lists every ``"path: message"`` found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid arch spec: " + "; ".join(self.problems))


@dataclass(frozen=True)
class StemSpec:
    """The stem: 3x3 conv, stride 2, + BN + act, optionally a 3x3 depthwise conv after it.

    Attributes
    ----------
    width : int
        Output channels of both convolutions.
    act : str
        One of :data:`ACTS`.
    dwconv : bool
        Whether a 3x3 stride-1 depthwise (or grouped) conv + BN + act follows
        (MobileFaceNet, SeesawFaceNet); FR-MBConv has none.
    dwconv_groups : int or None
        Groups of that conv; None is depthwise (``width`` groups). MMobileFaceNet
        uses 64 groups on 128 channels.
    """

    width: int
    act: str
    dwconv: bool
    dwconv_groups: int | None = None


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``depth`` blocks of one kind, the first with ``stride``.

    Attributes
    ----------
    block : str
        One of :data:`BLOCKS`: ``mbconv`` (FR-MBConv paper's MBConv kxk),
        ``frmbconv`` (kxk receptive field as stacked 3x3 depthwise convs, the first
        in the compact space), ``mfn_bottleneck`` (MobileFaceNet's bottleneck:
        expansion conv kept at e = 1, kernel 3, no SE), ``seesaw_shuffle`` /
        ``seesaw_share`` (uneven-group Seesaw blocks).
    width : int
        Output channels of every block of the stage.
    depth : int
        Number of blocks.
    stride : int
        Stride of the first block (1 or 2); the others have stride 1.
    kernel : int
        Depthwise kernel (receptive field for ``frmbconv``): 3, 5 or 7.
    expansion : float
        Hidden width / input channels of each block (applied to the block's input).
    se : bool
        Squeeze-and-excitation on or off.
    se_placement : str or None
        ``"pre"`` (on the expanded tensor, before the projection) or ``"post"``
        (after the projection) when ``se``; None otherwise. Seesaw blocks only
        have ``"pre"``.
    act : str
        Non-linearity of the block (one of :data:`ACTS`).
    skip : str
        ``"none"`` or ``"pool_conv"`` (DW-SeesawFaceNet V2's 2x2 max-pool + 1x1
        conv branch on the stage's first block, which must have stride 2; Seesaw
        blocks only).
    """

    block: str
    width: int
    depth: int
    stride: int
    kernel: int
    expansion: float
    se: bool
    act: str
    se_placement: str | None = None
    skip: str = "none"

    def __post_init__(self) -> None:
        if isinstance(self.expansion, int) and not isinstance(self.expansion, bool):
            object.__setattr__(self, "expansion", float(self.expansion))  # one canonical type


@dataclass(frozen=True)
class HeadSpec:
    """The embedding head after the last stage.

    Attributes
    ----------
    kind : str
        Global operator: ``gdconv`` (linear global depthwise conv over the last
        map), ``gap`` (global average pool), ``fc`` (BN, flatten, FC, BN1d on the
        whole map: ArcFace's "E") or ``s2fc`` (3x3 stride-2 depthwise, no padding,
        BN, then FC, BN1d: FR-MBConv's head).
    conv_width : int or None
        Channels of a 1x1 conv + BN + act before the global operator (MobileFaceNet's
        "conv1x1 512"); None for none.
    act : str
        Activation of that 1x1 conv.
    projection : str
        Layer that gives the embedding: ``conv`` (linear 1x1 conv + BN), ``fc``
        (FC + BN1d) or ``none`` (the global operator's output is the embedding).
        ``fc`` and ``s2fc`` heads have ``fc``.
    """

    kind: str
    conv_width: int | None
    act: str
    projection: str


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: input size, stem, stages, head and embedding length.

    Attributes
    ----------
    input_size : (int, int)
        Input (H, W) in pixels.
    stem : StemSpec
    stages : tuple of StageSpec
    head : HeadSpec
    embedding : int
        Length of the output embedding.

    Raises
    ------
    ArchSpecError
        On construction, for any invalid field (all of them listed).
    """

    input_size: tuple[int, int]
    stem: StemSpec
    stages: tuple[StageSpec, ...]
    head: HeadSpec
    embedding: int
    version: int = field(default=FORMAT_VERSION, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.stages, list):
            object.__setattr__(self, "stages", tuple(self.stages))
        if isinstance(self.input_size, list):
            object.__setattr__(self, "input_size", tuple(self.input_size))
        problems = validate(self)
        if problems:
            raise ArchSpecError(problems)

    # -- derived figures -------------------------------------------------

    @property
    def n_blocks(self) -> int:
        """Total number of blocks (sum of the stage depths)."""
        return sum(s.depth for s in self.stages)

    @property
    def total_stride(self) -> int:
        """Downsampling factor from the input to the last feature map."""
        return STEM_STRIDE * math.prod(s.stride for s in self.stages)

    @property
    def feature_size(self) -> tuple[int, int]:
        """Size (H, W) in pixels of the last feature map, the head's input."""
        return self.input_size[0] // self.total_stride, self.input_size[1] // self.total_stride

    @property
    def head_in_channels(self) -> int:
        """Channels entering the head's global operator."""
        return self.head.conv_width or self.stages[-1].width

    # -- (de)serialisation -----------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (lists, ints, floats, strings, None) in field order."""
        return {
            "version": self.version,
            "input_size": list(self.input_size),
            "stem": _plain(self.stem, _STEM_FIELDS),
            "stages": [_plain(s, _STAGE_FIELDS) for s in self.stages],
            "head": _plain(self.head, _HEAD_FIELDS),
            "embedding": self.embedding,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict` (``indent=None`` for one line)."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> "ArchSpec":
        """Spec from a dict as :meth:`to_dict` writes it; raises :class:`ArchSpecError`."""
        return _parse_arch(data)

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        """Spec from JSON text; raises :class:`ArchSpecError` (also for malformed JSON)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArchSpecError([f"<json>: not valid JSON ({exc})"]) from None
        return _parse_arch(data)


def _plain(obj: Any, order: dict[str, Any]) -> dict[str, Any]:
    """Fields of a part in the JSON order ``order`` (the parser's field table)."""
    out = {}
    for name in order:
        v = getattr(obj, name)
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # "expansion": 2, not 2.0; read back as the same number
        out[name] = v
    return out


# ---------------------------------------------------------------- parsing

_REQUIRED = object()
_STEM_FIELDS = {"width": _REQUIRED, "act": _REQUIRED, "dwconv": _REQUIRED, "dwconv_groups": None}
_STAGE_FIELDS = {
    "block": _REQUIRED, "width": _REQUIRED, "depth": _REQUIRED, "stride": _REQUIRED, "kernel": _REQUIRED,
    "expansion": _REQUIRED, "se": _REQUIRED, "se_placement": None, "act": _REQUIRED, "skip": "none",
}
_HEAD_FIELDS = {"kind": _REQUIRED, "conv_width": None, "act": _REQUIRED, "projection": _REQUIRED}
_ARCH_FIELDS = {
    "version": FORMAT_VERSION, "input_size": _REQUIRED, "stem": _REQUIRED, "stages": _REQUIRED,
    "head": _REQUIRED, "embedding": _REQUIRED,
}


def _take(data: Any, path: str, spec: dict[str, Any], problems: list[str]) -> dict[str, Any] | None:
    """Fields of the JSON object ``data`` with defaults filled in; None (and problems) if it is not one."""
    where = path or "<spec>"
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a JSON object, got {_show(data)}")
        return None
    prefix = f"{path}." if path else ""
    for key in data:
        if key not in spec:
            problems.append(f"{prefix}{key}: unknown field; allowed: {', '.join(spec)}")
    out = {}
    for key, default in spec.items():
        if key in data:
            out[key] = data[key]
        elif default is _REQUIRED:
            problems.append(f"{prefix}{key}: missing (required)")
        else:
            out[key] = default
    return out if all(k in out for k in spec) else None


def _parse_arch(data: Any) -> ArchSpec:
    problems: list[str] = []
    top = _take(data, "", _ARCH_FIELDS, problems)
    stem = head = None
    stages: list[StageSpec] = []
    if isinstance(data, dict) and "stem" in data:
        kw = _take(data["stem"], "stem", _STEM_FIELDS, problems)
        stem = StemSpec(**kw) if kw else None
    if isinstance(data, dict) and "head" in data:
        kw = _take(data["head"], "head", _HEAD_FIELDS, problems)
        head = HeadSpec(**kw) if kw else None
    raw_stages = data.get("stages") if isinstance(data, dict) else None
    if raw_stages is not None and not isinstance(raw_stages, list):
        problems.append(f"stages: expected a JSON array of stage objects, got {_show(raw_stages)}")
    for i, raw in enumerate(raw_stages if isinstance(raw_stages, list) else []):
        kw = _take(raw, f"stages[{i}]", _STAGE_FIELDS, problems)
        if kw:
            stages.append(StageSpec(**kw))
    if problems or top is None or stem is None or head is None:
        raise ArchSpecError(problems)
    size = top["input_size"]
    if isinstance(size, list):
        size = tuple(size)
    return ArchSpec(input_size=size, stem=stem, stages=tuple(stages), head=head,
                    embedding=top["embedding"], version=top["version"])


def _show(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, (dict, list, str, int, float, bool, type(None))) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------- validation


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v: Any, path: str, problems: list[str]) -> bool:
    if _is_int(v) and v > 0:
        return True
    problems.append(f"{path}: expected a positive integer, got {_show(v)}")
    return False


def _choice(v: Any, allowed: tuple, path: str, problems: list[str]) -> bool:
    # bools are ints in Python: True must not pass as stride 1
    if any(v == a and type(v) is type(a) for a in allowed):
        return True
    problems.append(f"{path}: {_show(v)} is not allowed; allowed: {', '.join(_show(a) for a in allowed)}")
    return False


def _check_stem(stem: Any, problems: list[str]) -> bool:
    if not isinstance(stem, StemSpec):
        problems.append(f"stem: expected a StemSpec, got {_show(stem)}")
        return False
    ok = _positive_int(stem.width, "stem.width", problems)
    ok &= _choice(stem.act, ACTS, "stem.act", problems)
    ok &= _choice(stem.dwconv, (False, True), "stem.dwconv", problems)
    g = stem.dwconv_groups
    if g is not None:
        if not stem.dwconv:
            problems.append("stem.dwconv_groups: must be null when stem.dwconv is false")
            ok = False
        elif _positive_int(g, "stem.dwconv_groups", problems):
            if _is_int(stem.width) and stem.width % g:
                problems.append(f"stem.dwconv_groups: {g} does not divide stem.width {stem.width}")
                ok = False
        else:
            ok = False
    return bool(ok)


def _check_stage_fields(s: Any, path: str, problems: list[str]) -> bool:
    if not isinstance(s, StageSpec):
        problems.append(f"{path}: expected a StageSpec, got {_show(s)}")
        return False
    ok = _choice(s.block, BLOCKS, f"{path}.block", problems)
    ok &= _positive_int(s.width, f"{path}.width", problems)
    ok &= _positive_int(s.depth, f"{path}.depth", problems)
    ok &= _choice(s.stride, STRIDES, f"{path}.stride", problems)
    ok &= _choice(s.kernel, KERNELS, f"{path}.kernel", problems)
    ok &= _choice(s.act, ACTS, f"{path}.act", problems)
    ok &= _choice(s.se, (False, True), f"{path}.se", problems)
    ok &= _choice(s.skip, SKIPS, f"{path}.skip", problems)
    e = s.expansion
    if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0 < e <= MAX_EXPANSION:
        problems.append(f"{path}.expansion: expected a number in (0, {MAX_EXPANSION:g}], got {_show(e)}")
        ok = False
    if s.se is True:
        ok &= _choice(s.se_placement, SE_PLACEMENTS, f"{path}.se_placement", problems)
    elif s.se is False and s.se_placement is not None:
        problems.append(f"{path}.se_placement: must be null when se is false, got {_show(s.se_placement)}")
        ok = False
    return bool(ok)


def _check_block_rules(s: StageSpec, in_ch: int, path: str, problems: list[str]) -> None:
    """What the zoo's block classes can build (checked on fields that are valid one by one)."""
    if round(min(in_ch, s.width) * s.expansion) < 1:
        problems.append(f"{path}.expansion: {s.expansion:g} leaves no hidden channel (hidden = round(channels x e))")
    if s.block == "mfn_bottleneck":
        if s.kernel != 3:
            problems.append(f"{path}.kernel: mfn_bottleneck has a 3x3 depthwise only; allowed: 3")
        if s.se:
            problems.append(f"{path}.se: mfn_bottleneck has no SE; allowed: false")
    if s.block not in SEESAW_BLOCKS:
        if s.skip != "none":
            problems.append(f"{path}.skip: {s.skip!r} is for Seesaw blocks only; allowed for {s.block}: \"none\"")
        return
    if s.skip == "pool_conv" and s.stride != 2:
        problems.append(f"{path}.skip: pool_conv is the branch of a stride-2 block (the stage's first); "
                        f"allowed at stride {s.stride}: \"none\"")
    if s.se and s.se_placement != "pre":
        problems.append(f"{path}.se_placement: Seesaw blocks gate the expanded tensor; allowed: \"pre\"")
    m = SEESAW_CHANNEL_MULTIPLE
    if in_ch % m:
        problems.append(f"{path}.width: Seesaw blocks need input channels divisible by {m}; "
                        f"the previous stage (or stem) gives {in_ch}")
    if s.width % m:
        problems.append(f"{path}.width: Seesaw blocks need a width divisible by {m}, got {s.width}")
    for c in (in_ch, s.width) if s.depth > 1 else (in_ch,):
        hidden = round(c * s.expansion)
        if hidden % m:
            problems.append(f"{path}.expansion: Seesaw hidden width round({c} x {s.expansion:g}) = {hidden} "
                            f"is not divisible by {m}")
            break


def _check_stages(stages: Any, in_ch: int | None, problems: list[str]) -> bool:
    if not isinstance(stages, tuple) or not stages:
        problems.append(f"stages: expected a non-empty sequence of stages, got {_show(stages)}")
        return False
    ok = True
    for i, s in enumerate(stages):
        good = _check_stage_fields(s, f"stages[{i}]", problems)
        if good and in_ch is not None:
            _check_block_rules(s, in_ch, f"stages[{i}]", problems)
        in_ch = s.width if good else None
        ok &= good
    if ok:
        n = sum(s.depth for s in stages)
        if n > MAX_BLOCKS:
            problems.append(f"stages: {n} blocks in total (sum of depths), at most MAX_BLOCKS = {MAX_BLOCKS}")
    return bool(ok)


def _check_head(head: Any, embedding: Any, problems: list[str]) -> bool:
    if not isinstance(head, HeadSpec):
        problems.append(f"head: expected a HeadSpec, got {_show(head)}")
        return False
    ok = _choice(head.kind, HEAD_KINDS, "head.kind", problems)
    ok &= _choice(head.act, ACTS, "head.act", problems)
    ok &= _choice(head.projection, PROJECTIONS, "head.projection", problems)
    if head.conv_width is not None:
        ok &= _positive_int(head.conv_width, "head.conv_width", problems)
    ok &= _positive_int(embedding, "embedding", problems)
    if ok and head.kind in ("fc", "s2fc") and head.projection != "fc":
        problems.append(f"head.projection: a {head.kind} head ends in FC + BN1d; allowed: \"fc\"")
        ok = False
    return bool(ok)


def _check_sizes(spec: ArchSpec, problems: list[str]) -> None:
    """Each stride-2 step must halve the map exactly and leave at least 1 px (3 px for s2fc)."""
    h, w = spec.input_size
    if h % STEM_STRIDE or w % STEM_STRIDE:
        problems.append(f"input_size: {h}x{w} px cannot be halved by the stride-2 stem; use even sizes")
        return
    h, w = h // STEM_STRIDE, w // STEM_STRIDE
    for i, s in enumerate(spec.stages):
        if s.stride == 2:
            if h % 2 or w % 2:
                problems.append(f"stages[{i}].stride: the {h}x{w} px feature map (input_size {spec.input_size[0]}x"
                                f"{spec.input_size[1]}) cannot be halved exactly; the map would vanish or misalign")
                return
            h, w = h // 2, w // 2
    if spec.head.kind == "s2fc" and min(h, w) < S2FC_MIN_MAP:
        problems.append(f"head.kind: s2fc needs a last feature map of at least {S2FC_MIN_MAP}x{S2FC_MIN_MAP} px, "
                        f"got {h}x{w}")


def _check_embedding(spec: ArchSpec, problems: list[str]) -> None:
    if spec.head.projection == "none" and spec.embedding != spec.head_in_channels:
        problems.append(f"embedding: with head.projection \"none\" the embedding is the {spec.head_in_channels} "
                        f"channels entering the head; got {spec.embedding}")


def validate(spec: ArchSpec) -> list[str]:
    """Every problem of ``spec`` as ``"path: message"`` strings; empty when it is valid."""
    problems: list[str] = []
    if spec.version != FORMAT_VERSION:
        problems.append(f"version: {_show(spec.version)} is not supported; allowed: {FORMAT_VERSION}")
    size = spec.input_size
    size_ok = isinstance(size, tuple) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size)
    if not size_ok:
        problems.append(f"input_size: expected [H, W], two positive integers (pixels), got {_show(list(size)) if isinstance(size, tuple) else _show(size)}")
    stem_ok = _check_stem(spec.stem, problems)
    stages_ok = _check_stages(spec.stages, spec.stem.width if stem_ok else None, problems)
    head_ok = _check_head(spec.head, spec.embedding, problems)
    if size_ok and stages_ok and head_ok and not problems:
        _check_sizes(spec, problems)
        _check_embedding(spec, problems)
    return problems
