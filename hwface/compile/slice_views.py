"""Channel splits and concatenations as zero-copy views (CPU targets).

The uneven group convolutions of the SeesawFaceNets (and every grouped layer
ONNX spells as Split -> convs -> Concat) cost one ``split`` and one
``concatenate`` kernel per layer: 58 of seesaw_share's 184 kernel calls, each a
full read and write of the activation. In NCHW with a batch of 1, a slice of the
channel axis is a contiguous run of memory, so neither copy is needed:

* the outputs of a ``split`` become views into its input;
* the inputs of a ``concatenate`` are written by their producers straight into
  their slice of the concatenation's buffer (the buffer is allocated before the
  first producer runs, and each producer's output is a view into it).

The kernels themselves are unchanged, so tuning records still apply. The rewrite
runs on the lowered Relax (after ``CallTIRRewrite``, where outputs are explicit
``builtin.alloc_tensor`` s) and before ``StaticPlanBlockMemory``, which treats
``memory.view`` and ``memory.ensure_zero_offset`` as aliases of their source and
so keeps a buffer alive while any view of it is. A slice is only aliased when it
starts on a 64-byte boundary (the alignment compiled kernels assume); other
splits and concatenations keep their copy kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALIGNMENT = 64  # bytes; TVM's kAllocAlignment, assumed by compiled kernels
_SPLIT = re.compile(r"split\d*$")
_CONCAT = re.compile(r"concatenate\d*$")


@dataclass(frozen=True)
class ViewStats:
    """How many copy kernels :func:`alias_channel_slices` removed."""

    splits: int
    concatenations: int


def channel_offsets(whole: tuple[int, ...], parts: list[tuple[int, ...]], itemsize: int) -> list[int] | None:
    """Byte offsets of ``parts`` laid end to end along axis 1 of ``whole``.

    Returns None unless the parts tile ``whole`` along axis 1 (every other
    dimension equal), every dimension before axis 1 is 1 (so each part is one
    contiguous run of memory) and every offset is a multiple of :data:`ALIGNMENT`.
    """
    if len(whole) < 2 or any(d != 1 for d in whole[:1]):
        return None
    if any(len(p) != len(whole) or p[0] != whole[0] or p[2:] != whole[2:] for p in parts):
        return None
    if sum(p[1] for p in parts) != whole[1]:
        return None
    inner = itemsize
    for d in whole[2:]:
        inner *= d
    offsets, channel = [], 0
    for p in parts:
        offsets.append(channel * inner)
        channel += p[1]
    if any(o % ALIGNMENT for o in offsets):
        return None
    return offsets


def _static_shape(ty) -> tuple[int, ...] | None:
    from tvm import tirx

    shape = getattr(ty, "shape", None)
    values = getattr(shape, "values", None)
    if values is None or not all(isinstance(v, tirx.IntImm) for v in values):
        return None
    return tuple(int(v) for v in values)


def kernel_called(mod, call) -> str | None:
    """Name of the PrimFunc (kernel) of ``mod`` that a Relax call calls directly, else None."""
    from tvm import ir, tirx

    op = getattr(call, "op", None)
    if not isinstance(op, ir.GlobalVar) or op not in mod:
        return None
    return op.name_hint if isinstance(mod[op], tirx.PrimFunc) else None


class _Block:
    """Rewrites one binding block of a lowered Relax function."""

    def __init__(self, mod, bindings):
        self.mod = mod
        self.bindings = list(bindings)
        self.index = {b.var: i for i, b in enumerate(self.bindings)}
        self.splits = 0
        self.concats = 0

    # -- queries -----------------------------------------------------------
    def _call(self, i):
        from tvm import relax

        value = self.bindings[i].value
        return value if isinstance(value, relax.Call) else None

    def _root(self, var):
        from tvm import relax

        while var in self.index and isinstance(self.bindings[self.index[var]].value, relax.Var):
            var = self.bindings[self.index[var]].value
        return var

    def _is_alloc(self, var) -> bool:
        from tvm import ir

        i = self.index.get(var)
        if i is None:
            return False
        call = self._call(i)
        return call is not None and isinstance(call.op, ir.Op) and call.op.name == "relax.builtin.alloc_tensor"

    # -- rewrites ----------------------------------------------------------
    def _view(self, src, var, offset):
        """Bindings making ``var`` a view of ``src`` at ``offset`` bytes."""
        from tvm import relax

        ty = var.ty
        view = relax.Var(f"{var.name}_view", ty)
        call = relax.op.memory.view(src, relax.ShapeExpr(list(ty.shape.values)), ty.dtype, offset)
        bb = relax.BlockBuilder()
        return [
            relax.VarBinding(view, bb.normalize(call)),
            relax.VarBinding(var, bb.normalize(relax.op.memory.ensure_zero_offset(view))),
        ]

    def rewrite(self):
        plan_replace: dict[int, list] = {}  # binding index -> bindings replacing it
        plan_before: dict[int, list] = {}  # binding index -> bindings inserted before it
        claimed: set = set()
        for i in range(len(self.bindings)):
            call = self._call(i)
            name = kernel_called(self.mod, call) if call is not None else None
            if name is None:
                continue
            if _CONCAT.match(name):
                self._plan_concat(i, call, claimed, plan_replace, plan_before)
            elif _SPLIT.match(name):
                self._plan_split(i, call, claimed, plan_replace)
        out = []
        for i, binding in enumerate(self.bindings):
            out.extend(plan_before.get(i, []))
            out.extend(plan_replace.get(i, [binding]))
        return out

    def _free_allocs(self, vars_, claimed) -> bool:
        """Whether ``vars_`` are distinct outputs allocated in this block and not yet aliased."""
        return len(set(vars_)) == len(vars_) and all(self._is_alloc(v) and v not in claimed for v in vars_)

    def _plan_concat(self, i, call, claimed, plan_replace, plan_before):
        *inputs, output = [self._root(a) for a in call.args]
        if not self._free_allocs([*inputs, output], claimed):
            return
        offsets = _slice_offsets(output, inputs)
        if offsets is None:
            return
        first = min(self.index[v] for v in inputs)
        plan_before[first] = [self.bindings[self.index[output]]]
        plan_replace[self.index[output]] = []
        for v, offset in zip(inputs, offsets):
            plan_replace[self.index[v]] = self._view(output, v, offset)
        plan_replace[i] = []
        claimed.update(inputs, [output])
        self.concats += 1

    def _plan_split(self, i, call, claimed, plan_replace):
        source, *outputs = call.args
        roots = [self._root(a) for a in outputs]
        if not self._free_allocs(roots, claimed):
            return
        offsets = _slice_offsets(source, roots)
        if offsets is None:
            return
        for v in roots:
            plan_replace[self.index[v]] = []
        plan_replace[i] = [b for v, offset in zip(roots, offsets) for b in self._view(source, v, offset)]
        claimed.update(roots)
        self.splits += 1


def _slice_offsets(whole, parts) -> list[int] | None:
    """:func:`channel_offsets` of Relax tensors ``parts`` in ``whole``; None unless all
    have static shapes and ``whole``'s dtype."""
    import numpy as np

    shapes = [_static_shape(v.ty) for v in [whole, *parts]]
    if None in shapes or any(v.ty.dtype != whole.ty.dtype for v in parts):
        return None
    return channel_offsets(shapes[0], shapes[1:], np.dtype(str(whole.ty.dtype)).itemsize)


def alias_channel_slices(mod):
    """Rewrite channel splits and concatenations of ``mod`` into views.

    Parameters
    ----------
    mod : tvm.IRModule
        Lowered Relax module (after ``CallTIRRewrite``, before
        ``StaticPlanBlockMemory``).

    Returns
    -------
    tuple of (tvm.IRModule, ViewStats)
    """
    from tvm import relax

    splits = concats = 0
    for gv, func in list(mod.functions.items()):
        if not isinstance(func, relax.Function) or not isinstance(func.body, relax.SeqExpr):
            continue
        blocks = []
        for block in func.body.blocks:
            if isinstance(block, relax.DataflowBlock):
                blocks.append(block)
                continue
            rewriter = _Block(mod, block.bindings)
            blocks.append(relax.BindingBlock(rewriter.rewrite(), block.span))
            splits += rewriter.splits
            concats += rewriter.concats
        body = relax.SeqExpr(blocks, func.body.body, func.body.span)
        mod[gv] = relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs, func.span)
    return relax.transform.Normalize()(mod), ViewStats(splits, concats)


def uses_views(target) -> bool:
    """Whether :func:`hwface.compile.build.build` aliases channel slices for ``target``
    (CPU targets: a device pointer there can point into the middle of a buffer)."""
    return target.kind.name == "llvm"

