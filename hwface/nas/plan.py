"""The kernel planner: the fused kernels TVM runs for an arch spec, derived in pure Python.

:func:`plan_kernels` gives, for an :class:`~hwface.nas.spec.ArchSpec` and a CPU
target, the same distinct ``(layer key string, calls)`` as the real pipeline
(:func:`hwface.nas.pipeline_kernels.pipeline_kernels`: export -> ONNX -> Relax ->
FuseOps/FuseTIR -> channel views -> :func:`hwface.latency.key.layer_key`), without
torch, ONNX or TVM: a NAS loop plans thousands of candidates a second. The keys
are built by the pipeline's own :func:`~hwface.latency.key.layer_key`, from a
planned call that has the fields of a traced
:class:`~hwface.latency.kernels.KernelCall`.

What TVM makes of the grammar (the rules, read off the fused modules of the zoo and
of sampled specs, and held to the pipeline by ``tests/nas/test_plan.py``):

* **Convolution epilogues.** BatchNorm after a convolution is folded into its
  weights by the exporter and leaves a bias ``add``; FuseOps then fuses every
  following *elementwise* op into the convolution's kernel (:data:`ACT_OPS`: PReLU,
  ReLU, swish = sigmoid + multiply, hard-swish = add + clip + divide + multiply; the
  SE gate's sigmoid and multiply; a residual ``add``; an unfolded BatchNorm, see
  :data:`BN_UNFOLDED_OPS`), never an injective one (split, reshape) nor a reduction.
* **SE splits kernels.** The global average pool (``mean``) reads a tensor with a
  second consumer (the gate), so it is a kernel of its own; the reduce conv fuses
  its activation; the expand conv fuses sigmoid, the multiply with the gated tensor
  and, for SE-Post with residual, the residual add. The projection before an
  SE-Post stays ``conv2d+add``.
* **Seesaw blocks.** Each uneven group conv is its own kernel; the channel split
  before and the concatenation after them are injective ops: channel shuffle fuses
  the expansion's concatenation with its reshape/transpose/reshape, a residual add
  fuses into the projection's concatenation, and a concatenation (with or without
  that add) absorbs the next block's input split when that split is the tensor's
  only consumer (the next block has no residual and no skip branch).
* **Views (CPU targets).** A pure split or concatenation along channels whose
  slices start on 64-byte boundaries runs as a view, as
  :func:`hwface.compile.slice_views.channel_offsets` decides; pure reshapes inside
  the network (flatten before an FC) are views, the final flatten stays a kernel.
* **Heads.** GDConv and S2FC's strided depthwise conv fold their BatchNorm (``conv2d+add``);
  ``gap`` is a ``mean`` of its own (nothing before it joins it); FC + BatchNorm1d is one
  ``matmul+add+subtract+divide+multiply+add`` kernel. The ``fc`` head's BatchNorm2d
  folds into a bare conv before it (the exporter folds Conv + BN), joins the epilogue
  of any other conv kernel, and after a Seesaw concatenation joins that kernel
  together with the flatten (both are injective or elementwise).

Anything outside these rules (a non-CPU target, a block kind, head or activation
without a rule) raises :class:`PlanError` naming it: the planner never guesses.
Blocks are planned once per signature (kind, widths, map size, stride, options), stages
and heads once per input shape, and remembered, so a warm plan costs a few
microseconds a block (``benchmarks/planner_speed.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from hwface.compile.op_attrs import OpAttrs
from hwface.compile.slice_views import channel_offsets
from hwface.errors import HwfaceError
from hwface.latency.key import LayerKey, layer_key
from hwface.nas.spec import STEM_STRIDE, ArchSpec, HeadSpec, StageSpec, StemSpec

Shape = tuple[int, ...]
Items = tuple[tuple[str, int], ...]  # (key string, calls) pairs

# ---------------------------------------------------------------- fusion rules (data)

# Relax ops an activation imports to; all elementwise, fused into the producing conv's kernel.
ACT_OPS: dict[str, tuple[str, ...]] = {
    "prelu": ("prelu",),
    "relu": ("relu",),
    "swish": ("sigmoid", "multiply"),  # SiLU exports as Sigmoid + Mul
    "hardswish": ("add", "clip", "divide", "multiply"),  # HardSwish: x * clip(x + 3, 0, 6) / 6
    "none": (),
}
BIAS_OPS = ("add",)  # a conv bias, or a BatchNorm folded into the conv's weights
SE_GATE_OPS = ("sigmoid", "multiply")  # sigmoid gate times the gated tensor
RESIDUAL_OPS = ("add",)
BN_UNFOLDED_OPS = ("subtract", "divide", "multiply", "add")  # BatchNorm after no conv (DecomposeOpsForInference)
# A kernel that is a bare Conv (+ its folded BN's bias): a BatchNorm reading only its output folds into it too.
CONV_BN_FOLDED_OPS = ("conv2d",) + BIAS_OPS
FC_OPS = ("matmul", "add")  # Linear (Gemm) with bias
SHUFFLE_OPS = ("reshape", "transpose", "reshape")  # ChannelShuffle(2), fused into the concatenation before it
SPLIT_OPS = ("split",)
CONCAT_OPS = ("concatenate",)
MEAN_OPS = ("mean",)  # global average pool (SE squeeze, gap head)
MAXPOOL_OPS = ("max_pool2d",)
RESHAPE_OPS = ("reshape",)

SE_REDUCTION = 4  # hidden = max(1, channels // 4) in every SE of the grammar
SEESAW_SMALL_GROUP = 4  # Seesaw's uneven split: 1/4 : 3/4
ITEMSIZE = 4  # float32 bytes
DTYPE = "float32"

# Kernel groups as FuseOps forms them: which ops a later one may still join.
CONV = "conv"  # conv or matmul anchor + elementwise epilogue: takes further elementwise ops only
INJECTIVE = "injective"  # concatenation (+ elementwise): takes a following split (its only consumer)


class PlanError(HwfaceError):
    """A target or spec construct the kernel planner does not plan (the message names it)."""


class PlannedKernel(NamedTuple):
    """One distinct kernel of a plan: its layer key string and how many times the network calls it."""

    key: str
    calls: int

    @property
    def layer_key(self) -> LayerKey:
        """The key as a :class:`~hwface.latency.key.LayerKey`."""
        return LayerKey.from_str(self.key)


@dataclass(frozen=True)
class PlannedCall:
    """A kernel call as :func:`~hwface.latency.key.layer_key` reads a traced ``KernelCall``.

    Attributes
    ----------
    relax_ops : tuple of str
        Relax ops fused into the kernel, in order.
    data_shapes : tuple of tuple of int
        Non-constant inputs, in the fused kernel's parameter order (first use).
    output_shape : tuple of int
        The (first) output.
    weight_shapes : tuple of tuple of int
        Constant inputs that matter to the key (a matmul's weight makes it ``fc``).
    op_attrs : OpAttrs or None
        The convolution or pooling window.
    parts : tuple of tuple of int
        A channel split's outputs (whether it can run as a view); not part of the key.
    """

    relax_ops: tuple[str, ...]
    data_shapes: tuple[Shape, ...]
    output_shape: Shape
    weight_shapes: tuple[Shape, ...] = ()
    op_attrs: OpAttrs | None = None
    dtype: str = DTYPE
    parts: tuple[Shape, ...] = ()
    nodes: tuple = ()  # layer_key reads a pooling's ONNX node only when op_attrs is None

    def extended(self, ops: tuple[str, ...], inputs: tuple[Shape, ...] = (), output: Shape | None = None
                 ) -> "PlannedCall":
        """This call with ``ops`` fused after it (reading extra ``inputs``; ``output`` if it changes)."""
        return PlannedCall(self.relax_ops + ops, self.data_shapes + inputs, output or self.output_shape,
                           self.weight_shapes, self.op_attrs, self.dtype)


@lru_cache(maxsize=1 << 16)
def _key(call: PlannedCall) -> str:
    return layer_key(call).to_str()


# ---------------------------------------------------------------- kernels


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def conv_call(x: Shape, out_ch: int, kernel: tuple[int, int] | int, stride: int = 1, pad: int | None = None,
              groups: int = 1, bias: bool = True, act: str = "none", epilogue: tuple[str, ...] = (),
              extra: tuple[Shape, ...] = ()) -> PlannedCall:
    """A conv kernel: ``conv2d`` [+ bias add] + activation + ``epilogue`` ops reading ``extra`` inputs.

    Parameters
    ----------
    x : tuple of int
        Input (1, C, H, W).
    out_ch : int
    kernel : int or (int, int)
        Window (kh, kw) in pixels.
    stride : int
    pad : int, optional
        Symmetric padding in pixels; default ``kernel // 2`` ("same" for odd kernels).
    groups : int
    bias : bool
        A bias add (conv bias, or folded BatchNorm).
    act : str
        Key of :data:`ACT_OPS`.
    """
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    ph, pw = (kh // 2, kw // 2) if pad is None else (pad, pad)
    out = (x[0], out_ch, _conv_out(x[2], kh, stride, ph), _conv_out(x[3], kw, stride, pw))
    weight = (out_ch, x[1] // groups, kh, kw)
    attrs = OpAttrs("conv2d", (kh, kw), (stride, stride), (ph, pw, ph, pw), (1, 1), groups, weight)
    ops = ("conv2d",) + (BIAS_OPS if bias else ()) + ACT_OPS[act] + epilogue
    return PlannedCall(ops, (x,) + extra, out, (weight,), attrs)


def _pw(x: Shape, out_ch: int, act: str = "none", bias: bool = True, epilogue: tuple[str, ...] = (),
        extra: tuple[Shape, ...] = ()) -> PlannedCall:
    return conv_call(x, out_ch, 1, bias=bias, act=act, epilogue=epilogue, extra=extra)


def _dw(x: Shape, kernel: int, stride: int, act: str) -> PlannedCall:
    return conv_call(x, x[1], kernel, stride, groups=x[1], act=act)


def _mean(x: Shape) -> PlannedCall:
    return PlannedCall(MEAN_OPS, (x,), (x[0], x[1], 1, 1))


def _with_channels(x: Shape, c: int) -> Shape:
    return (x[0], c) + x[2:]


def _is_view(call: PlannedCall) -> bool:
    """A pure channel split or concatenation with 64-byte aligned slices runs as a view (CPU targets)."""
    if call.relax_ops == SPLIT_OPS:
        whole, parts = call.data_shapes[0], call.parts
    elif call.relax_ops == CONCAT_OPS:
        whole, parts = call.output_shape, call.data_shapes
    else:
        return False
    return channel_offsets(whole, list(parts), ITEMSIZE) is not None


def _split_call(x: Shape, widths: tuple[int, ...]) -> PlannedCall:
    parts = tuple(_with_channels(x, c) for c in widths)
    return PlannedCall(SPLIT_OPS, (x,), parts[0], parts=parts)


# ---------------------------------------------------------------- blocks


@dataclass(frozen=True)
class BlockPlan:
    """The kernels of one block, with its two ends left open for its neighbours.

    Attributes
    ----------
    body : tuple of (str, int)
        Finished kernels (key, calls), neither the input split nor the output kernel.
    split : PlannedCall or None
        The block's input channel split (Seesaw blocks), fused into the previous
        kernel when that is an injective group and ``split_alone`` is True.
    split_alone : bool
        The split is the block input's only consumer (no residual, no skip branch).
    out : PlannedCall
        The kernel writing the block's output (a later op may still join it).
    out_group : str
        :data:`CONV` or :data:`INJECTIVE`.
    out_shape : tuple of int
    """

    body: Items
    split: PlannedCall | None
    split_alone: bool
    out: PlannedCall
    out_group: str
    out_shape: Shape


def _counted(calls: list[PlannedCall]) -> Items:
    counts: dict[str, int] = {}
    for c in calls:
        if not _is_view(c):
            k = _key(c)
            counts[k] = counts.get(k, 0) + 1
    return tuple(counts.items())


def _se(t: Shape, act: str, bias: bool, epilogue: tuple[str, ...] = (), extra: tuple[Shape, ...] = ()
        ) -> list[PlannedCall]:
    """Squeeze-and-excitation on ``t``: mean, reduce conv + act, expand conv + sigmoid gate (x ``t``) + epilogue."""
    hidden = max(1, t[1] // SE_REDUCTION)
    pooled = _mean(t)
    reduce = _pw(pooled.output_shape, hidden, act=act, bias=bias)
    gate = _pw(reduce.output_shape, t[1], bias=bias).extended(SE_GATE_OPS + epilogue, (t,) + extra, output=t)
    return [pooled, reduce, gate]


def _inverted_bottleneck(stage: StageSpec, x: Shape, stride: int) -> tuple[list[PlannedCall], PlannedCall]:
    """mbconv, frmbconv, mfn_bottleneck: (kernels before the last, the last); all conv groups."""
    in_ch, out_ch, act = x[1], stage.width, stage.act
    hidden = int(round(in_ch * stage.expansion))
    residual = stride == 1 and in_ch == out_ch
    calls: list[PlannedCall] = []
    t = x
    if stage.block == "frmbconv":
        n_dw = (stage.kernel - 1) // 2  # stacked 3x3 depthwise convs with receptive field `kernel`
        if n_dw > 1:  # the first one sits in the compact space, linear
            calls.append(_dw(t, 3, 1, "none"))
            t = calls[-1].output_shape
        dws = [(3, stride if i == max(n_dw - 1, 1) - 1 else 1) for i in range(max(n_dw - 1, 1))]
    else:
        dws = [(stage.kernel, stride)]
    if hidden != in_ch or stage.block == "mfn_bottleneck":  # MobileFaceNet keeps the expansion at e = 1
        calls.append(_pw(t, hidden, act=act))
        t = calls[-1].output_shape
    for k, s in dws:
        calls.append(_dw(t, k, s, act))
        t = calls[-1].output_shape
    se = stage.se_placement if stage.se else None
    if se == "pre":
        calls.extend(_se(t, "prelu", True))
    res_ops, res_in = (RESIDUAL_OPS, (x,)) if residual else ((), ())
    if se == "post":
        calls.append(_pw(t, out_ch))
        se_calls = _se(calls[-1].output_shape, "prelu", True, res_ops, res_in)
        calls.extend(se_calls[:-1])
        return calls, se_calls[-1]
    return calls, _pw(t, out_ch, epilogue=res_ops, extra=res_in)


def _uneven(ch: int) -> tuple[int, int]:
    small = ch // SEESAW_SMALL_GROUP
    return small, ch - small


def _group_convs(parts: tuple[int, ...], outs: tuple[int, ...], x: Shape, act: str) -> list[PlannedCall]:
    return [_pw(_with_channels(x, i), o, act=act) for i, o in zip(parts, outs)]


def _seesaw(stage: StageSpec, x: Shape, stride: int) -> BlockPlan:
    in_ch, out_ch, act = x[1], stage.width, stage.act
    hidden = int(round(in_ch * stage.expansion))
    residual = stride == 1 and in_ch == out_ch
    skip = stage.skip == "pool_conv" and stride == 2 and not residual
    in_g, hid_g, out_g = _uneven(in_ch), _uneven(hidden), _uneven(out_ch)
    calls = _group_convs(in_g, hid_g, x, act)
    t = _with_channels(x, hidden)
    mix_inputs = tuple(c.output_shape for c in calls)
    if stage.block == "seesaw_shuffle":
        calls.append(PlannedCall(CONCAT_OPS + SHUFFLE_OPS, mix_inputs, t))
        proj_in, proj_out = hid_g, out_g
    else:  # share: the projection's groups are laid the other way round
        calls.append(PlannedCall(CONCAT_OPS, mix_inputs, t))
        proj_in, proj_out = hid_g[::-1], out_g[::-1]
    calls.append(_dw(t, stage.kernel, stride, act))
    t = calls[-1].output_shape
    if stage.se:
        calls.extend(_se(t, "relu", False))
    calls.append(_split_call(t, proj_in))
    projections = _group_convs(proj_in, proj_out, t, "none")
    calls.extend(projections)
    y = _with_channels(t, out_ch)
    parts = tuple(c.output_shape for c in projections)
    if residual:
        out, group = PlannedCall(CONCAT_OPS + RESIDUAL_OPS, parts + (x,), y), INJECTIVE
    elif skip:
        calls.append(PlannedCall(CONCAT_OPS, parts, y))
        pooled = (x[0], in_ch, x[2] // 2, x[3] // 2)
        calls.append(PlannedCall(MAXPOOL_OPS, (x,), pooled, (),
                                 OpAttrs("max_pool2d", (2, 2), (2, 2), (0, 0, 0, 0), (1, 1))))
        out, group = _pw(pooled, out_ch, act=act, epilogue=RESIDUAL_OPS, extra=(y,)), CONV
    else:
        out, group = PlannedCall(CONCAT_OPS, parts, y), INJECTIVE
    return BlockPlan(_counted(calls), _split_call(x, in_g), not residual and not skip, out, group, y)


def _bottleneck_plan(stage: StageSpec, x: Shape, stride: int) -> BlockPlan:
    calls, out = _inverted_bottleneck(stage, x, stride)
    return BlockPlan(_counted(calls), None, False, out, CONV, out.output_shape)


# The block kinds of hwface.nas.spec.BLOCKS that have rules; a kind added to the grammar later is refused.
BLOCK_PLANNERS = {
    "mbconv": _bottleneck_plan,
    "frmbconv": _bottleneck_plan,
    "mfn_bottleneck": _bottleneck_plan,
    "seesaw_shuffle": _seesaw,
    "seesaw_share": _seesaw,
}
HEAD_KINDS = ("gdconv", "gap", "fc", "s2fc")
PROJECTIONS = ("conv", "fc", "none")
STEM_ACTS = BLOCK_ACTS = tuple(a for a in ACT_OPS if a != "none")


@lru_cache(maxsize=1 << 14)
def plan_block(stage: StageSpec, x: Shape, stride: int) -> BlockPlan:
    """The kernels of one block of ``stage`` on input ``x`` (1, C, H, W) with ``stride`` (remembered).

    ``stage.depth`` and ``stage.stride`` are not read: callers pass a stage with
    them normalised (see :func:`_block_stage`) so equal blocks share one entry.

    Raises
    ------
    PlanError
        A block kind or activation without a rule.
    """
    planner = BLOCK_PLANNERS.get(stage.block)
    if planner is None:
        raise PlanError(f"the kernel planner has no rule for block {stage.block!r} (it plans "
                        f"{', '.join(BLOCK_PLANNERS)}); take this spec's kernels through the pipeline "
                        f"(hwface.nas.pipeline_kernels)")
    if stage.act not in BLOCK_ACTS:
        raise PlanError(f"the kernel planner has no rule for activation {stage.act!r} of a {stage.block} block "
                        f"(it plans {', '.join(BLOCK_ACTS)})")
    return planner(stage, x, stride)


def _block_stage(stage: StageSpec) -> StageSpec:
    """``stage`` with depth 1 and stride 1: the fields that make a block's kernels, besides input and stride."""
    return StageSpec(stage.block, stage.width, 1, 1, stage.kernel, stage.expansion, stage.se, stage.act,
                     stage.se_placement, stage.skip)


# ---------------------------------------------------------------- network


@lru_cache(maxsize=1 << 14)
def _finished(call: PlannedCall) -> Items:
    """A kernel nothing joins any more: its key, or nothing when it runs as a view."""
    return () if _is_view(call) else ((_key(call), 1),)


def _join(out: PlannedCall, group: str, split: PlannedCall | None, split_alone: bool) -> Items:
    """The kernels at a block boundary: the kernel writing the tensor, and the next block's input split."""
    if split is None:
        return _finished(out)
    if split_alone and group == INJECTIVE:  # the concatenation absorbs the split: one kernel, never a view
        return ((_key(out.extended(SPLIT_OPS, output=split.output_shape)), 1),)
    return _finished(out) + _finished(split)


def _merge(counts: dict[str, int], items: Items) -> None:
    for k, n in items:
        counts[k] = counts.get(k, 0) + n


_MAX_JOINS = 256


@dataclass(eq=False)
class Segment:
    """The kernels of a run of layers (the stem, a stage), with both ends left open.

    Attributes
    ----------
    split : PlannedCall or None
        The first block's input split (Seesaw), see :class:`BlockPlan`.
    split_alone : bool
    items : tuple of (str, int)
        Finished kernels, neither ``split`` nor ``out``.
    out : PlannedCall
        The kernel writing the segment's output; ``out_group`` its FuseOps group.
    out_shape : tuple of int
    """

    split: PlannedCall | None
    split_alone: bool
    items: Items
    out: PlannedCall
    out_group: str
    out_shape: Shape
    _joins: dict = field(default_factory=dict, repr=False)

    def join(self, nxt: "Segment | None") -> Items:
        """Kernels at the boundary with segment ``nxt`` (None: the output kernel alone), remembered."""
        items = self._joins.get(nxt)
        if items is None:
            if len(self._joins) > _MAX_JOINS:  # neighbours seen over a long search: keep the memo small
                self._joins.clear()
            split = nxt.split if nxt is not None else None
            items = self._joins[nxt] = _join(self.out, self.out_group, split, nxt is not None and nxt.split_alone)
        return items

    def join_bn(self) -> Items:
        """The output kernel with a BatchNorm (the fc head's) fused into its epilogue."""
        items = self._joins.get("bn")
        if items is None:
            items = self._joins["bn"] = _finished(_with_batchnorm(self.out, self.out_group))
        return items


def _with_batchnorm(out: PlannedCall, group: str) -> PlannedCall:
    """The kernel ``out`` once the fc head's BatchNorm2d (then flatten) reading its output has joined it."""
    if out.relax_ops == CONV_BN_FOLDED_OPS:  # the exporter folds a BN into the bare Conv it follows
        return out
    if group == CONV:  # elementwise ops join a conv's epilogue; the flatten does not (a view)
        return out.extended(BN_UNFOLDED_OPS)
    s = out.output_shape  # an injective kernel takes the elementwise BN and the injective flatten after it
    return out.extended(BN_UNFOLDED_OPS + RESHAPE_OPS, output=(s[0], s[1] * s[2] * s[3]))


@lru_cache(maxsize=1 << 10)
def stem_segment(stem: StemSpec, x: Shape) -> Segment:
    """The stem on input ``x`` (1, 3, H, W): conv 3x3 stride 2 [+ depthwise or grouped 3x3]."""
    if stem.act not in STEM_ACTS:
        raise PlanError(f"the kernel planner has no rule for stem activation {stem.act!r} "
                        f"(it plans {', '.join(STEM_ACTS)})")
    calls = [conv_call(x, stem.width, 3, STEM_STRIDE, act=stem.act)]
    if stem.dwconv:
        y = calls[0].output_shape
        calls.append(conv_call(y, stem.width, 3, 1, groups=stem.dwconv_groups or stem.width, act=stem.act))
    return Segment(None, False, _counted(calls[:-1]), calls[-1], CONV, calls[-1].output_shape)


@lru_cache(maxsize=1 << 14)
def stage_segment(stage: StageSpec, x: Shape) -> Segment:
    """All blocks of ``stage`` on input ``x`` (1, C, H, W), block boundaries resolved (remembered)."""
    block = _block_stage(stage)
    first = prev = plan_block(block, x, stage.stride)
    counts = dict(first.body)
    for _ in range(stage.depth - 1):
        bp = plan_block(block, prev.out_shape, 1)
        _merge(counts, _join(prev.out, prev.out_group, bp.split, bp.split_alone))
        _merge(counts, bp.body)
        prev = bp
    return Segment(first.split, first.split_alone, tuple(counts.items()), prev.out, prev.out_group, prev.out_shape)


def _fc(x: Shape, dim: int) -> PlannedCall:
    """Flatten (a view) + Linear + BatchNorm1d: one kernel on the flattened input."""
    k = x[1] * (x[2] if len(x) > 2 else 1) * (x[3] if len(x) > 3 else 1)
    return PlannedCall(FC_OPS + BN_UNFOLDED_OPS, ((x[0], k),), (x[0], dim), ((k, dim),))


@dataclass(frozen=True)
class HeadPlan:
    """The head's kernels, and whether its first op (the fc head's BatchNorm2d) joins the backbone's last kernel."""

    joins_bn: bool
    items: Items


@lru_cache(maxsize=1 << 12)
def head_plan(head: HeadSpec, embedding: int, x: Shape) -> HeadPlan:
    """The kernels of ``head`` on the last feature map ``x`` (1, C, H, W), ending in the final flatten."""
    if head.kind not in HEAD_KINDS or head.projection not in PROJECTIONS or head.act not in BLOCK_ACTS:
        raise PlanError(f"the kernel planner has no rule for head {head.kind!r} with projection "
                        f"{head.projection!r} and act {head.act!r} (it plans kinds {', '.join(HEAD_KINDS)}, "
                        f"projections {', '.join(PROJECTIONS)}, acts {', '.join(BLOCK_ACTS)})")
    calls: list[PlannedCall] = []
    if head.conv_width is not None:
        calls.append(_pw(x, head.conv_width, act=head.act))
        x = calls[-1].output_shape
    joins_bn = False
    if head.kind == "fc":  # BatchNorm2d on the map -> flatten (a view) -> FC + BatchNorm1d
        if calls:
            calls[-1] = _with_batchnorm(calls[-1], CONV)
        else:
            joins_bn = True
        calls.append(_fc(x, embedding))
    elif head.kind == "s2fc":  # 3x3 stride-2 depthwise, no padding, BN folded -> flatten -> FC + BatchNorm1d
        calls.append(conv_call(x, x[1], 3, 2, pad=0, groups=x[1]))
        calls.append(_fc(calls[-1].output_shape, embedding))
    else:
        calls.append(_mean(x) if head.kind == "gap" else conv_call(x, x[1], x[2:], 1, pad=0, groups=x[1]))
        y = calls[-1].output_shape
        if head.projection == "conv":
            calls.append(_pw(y, embedding))
        elif head.projection == "fc":
            calls.append(_fc(y, embedding))
    out = calls[-1].output_shape
    calls.append(PlannedCall(RESHAPE_OPS, (out,), (out[0], out[1])))  # the final flatten stays a kernel
    return HeadPlan(joins_bn, _counted(calls))


def check_target(target_spec) -> None:
    """Raise :class:`PlanError` unless ``target_spec`` is a CPU (LLVM) target, the one the rules hold for.

    On other targets channel splits and concatenations are copy kernels, not views
    (:func:`hwface.compile.slice_views.uses_views`).
    """
    target = getattr(target_spec, "target", None)
    kind = target.get("kind") if isinstance(target, dict) else None
    if kind != "llvm":
        name = getattr(target_spec, "name", repr(target_spec))
        raise PlanError(f"the kernel planner plans CPU (llvm) targets only; target {name!r} is "
                        f"{kind!r}: take its kernels through the pipeline (hwface.nas.pipeline_kernels)")


def plan_kernels(arch: ArchSpec, target_spec) -> list[PlannedKernel]:
    """The distinct kernels ``(key string, calls)`` TVM runs for ``arch`` on ``target_spec``, without TVM.

    Agrees with :func:`hwface.nas.pipeline_kernels.pipeline_kernels` (same multiset
    of key and calls). Ordered by first call as planned: the stem first, the final
    flatten last.

    Parameters
    ----------
    arch : ArchSpec
    target_spec : TargetSpec
        A CPU target (``target.kind`` = ``llvm``, e.g. ``load_target("host")``).

    Returns
    -------
    list of PlannedKernel
        ``(key, calls)`` pairs; ``key`` is :meth:`LayerKey.to_str` output.

    Raises
    ------
    PlanError
        A target that is not a CPU (llvm) target, or a spec construct without a rule.
    """
    check_target(target_spec)
    if not isinstance(arch, ArchSpec):
        raise PlanError(f"plan_kernels plans an ArchSpec, not {type(arch).__name__}")
    prev = stem_segment(arch.stem, (1, 3) + tuple(arch.input_size))
    counts = dict(prev.items)
    for stage in arch.stages:
        seg = stage_segment(stage, prev.out_shape)
        _merge(counts, prev.join(seg))
        _merge(counts, seg.items)
        prev = seg
    head = head_plan(arch.head, arch.embedding, prev.out_shape)
    _merge(counts, prev.join_bn() if head.joins_bn else prev.join(None))
    _merge(counts, head.items)
    return list(map(PlannedKernel._make, counts.items()))
