"""The attributes of the convolution or pooling each fused kernel computes, read from its Relax op.

A fused PrimFunc no longer holds Relax ops: the attributes of its convolution
(kernel, stride, padding, dilation, groups) are known only before LegalizeOps
turns ``relax.nn.conv2d`` into a PrimFunc. :func:`recording_legalize_map` wraps
the legalizers so that each one records, for the PrimFunc it creates, the
attributes of the Relax call it legalized; after FuseOps, :func:`trace_calls`
reads which of those PrimFuncs each fused function calls. FuseTIR keeps the
order of ``main``'s bindings and names each fused PrimFunc after its fused
function, so the trace lists, per ``call_tir`` of the fused ``main``, the
kernel's name and its :class:`OpAttrs` (checked by name in
:func:`hwface.latency.kernels.kernel_calls`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Relax ops whose attributes a kernel's layer key needs.
TRACED_OPS = ("relax.nn.conv2d", "relax.nn.max_pool2d", "relax.nn.avg_pool2d")


@dataclass(frozen=True)
class OpAttrs:
    """Attributes of the convolution or pooling a kernel computes, as its Relax op has them.

    Attributes
    ----------
    op : str
        Relax op name without ``relax.nn.``: ``conv2d``, ``max_pool2d`` or ``avg_pool2d``.
    kernel : (int, int)
        Window (kh, kw): the conv weight's spatial shape or the pool size.
    stride, dilation : (int, int)
    padding : (int, int, int, int)
        Top, left, bottom, right.
    groups : int or None
        Conv only.
    weight_shape : tuple of int or None
        Conv only: (O, I / groups, kh, kw).
    """

    op: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int | None = None
    weight_shape: tuple[int, ...] | None = None


def _ints(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _padding(values) -> tuple[int, int, int, int]:
    p = _ints(values)
    return p * 2 if len(p) == 2 else p  # Relax pads (h, w) or (top, left, bottom, right)


def op_attrs_of(call) -> OpAttrs | None:
    """:class:`OpAttrs` of a ``relax.nn.conv2d`` / ``max_pool2d`` / ``avg_pool2d`` call (NCHW only), else None."""
    name = call.op.name
    a = call.attrs
    if name == "relax.nn.conv2d":
        if (a.data_layout, a.kernel_layout) != ("NCHW", "OIHW"):
            return None
        w = _ints(call.args[1].ty.shape.values)
        return OpAttrs("conv2d", w[2:], _ints(a.strides), _padding(a.padding), _ints(a.dilation), int(a.groups), w)
    if name in ("relax.nn.max_pool2d", "relax.nn.avg_pool2d") and a.layout == "NCHW":
        return OpAttrs(name[len("relax.nn."):], _ints(a.pool_size), _ints(a.strides), _padding(a.padding),
                       _ints(a.dilation))
    return None


def recording_legalize_map(overrides: dict) -> tuple[dict, dict[str, list[OpAttrs]]]:
    """Legalizers for LegalizeOps that also record what they legalize.

    Parameters
    ----------
    overrides : dict
        Op name -> legalizer, as LegalizeOps' ``customize_legalize_map`` takes it.

    Returns
    -------
    legalize_map : dict
        ``overrides`` plus, for :data:`TRACED_OPS`, wrappers that call the same
        legalizer (the override or TVM's own) and return its result unchanged.
    recorded : dict
        Filled while LegalizeOps runs: PrimFunc name -> :class:`OpAttrs` of every
        call legalized into it (several when equal calls share one PrimFunc).
    """
    import tvm

    recorded: dict[str, list[OpAttrs]] = {}

    def wrap(legalize):
        def record(bb, call):
            out = legalize(bb, call)
            attrs = op_attrs_of(call)
            callee = out.args[0] if getattr(getattr(out, "op", None), "name", "") == "relax.call_tir" else None
            if attrs is not None and hasattr(callee, "name_hint"):
                seen = recorded.setdefault(callee.name_hint, [])
                if attrs not in seen:
                    seen.append(attrs)
            return out

        return record

    legalize_map = dict(overrides)
    for op in TRACED_OPS:
        legalize_map[op] = wrap(overrides.get(op) or tvm.ir.Op.get(op).get_attr("FLegalize"))
    return legalize_map, recorded


def main_callees(main) -> list[str]:
    """Names of the functions ``main`` calls (call_tir PrimFuncs or fused Relax functions), in binding order."""
    from tvm import relax

    out = []
    for block in main.body.blocks:
        for b in block.bindings:
            v = b.value
            if not isinstance(v, relax.Call):
                continue
            if getattr(v.op, "name", "") == "relax.call_tir":
                out.append(v.args[0].name_hint)
            elif isinstance(v.op, relax.GlobalVar):
                out.append(v.op.name_hint)
    return out


def _tir_callees(func) -> list[str]:
    """PrimFuncs a fused Relax function calls, in order."""
    from tvm import relax

    return [b.value.args[0].name_hint for block in func.body.blocks for b in block.bindings
            if isinstance(b.value, relax.Call) and getattr(b.value.op, "name", "") == "relax.call_tir"]


def trace_calls(grouped, recorded: dict[str, list[OpAttrs]]) -> list[tuple[str, OpAttrs | None]]:
    """Per call of ``grouped["main"]`` (the module after FuseOps), its name and the attributes of its traced op.

    A fused function computing one traced op gets that op's attributes; one
    computing none gets None. So does one whose PrimFunc was shared by calls
    with different attributes (e.g. two paddings giving the same phased conv),
    or one fusing two traced ops: the key then falls back to shapes.
    """
    from tvm import relax

    funcs = {gv.name_hint: f for gv, f in grouped.functions.items()}
    trace = []
    for name in main_callees(grouped["main"]):
        f = funcs.get(name)
        prims = _tir_callees(f) if isinstance(f, relax.Function) else [name]
        found = [recorded[p] for p in prims if p in recorded]
        trace.append((name, found[0][0] if len(found) == 1 and len(found[0]) == 1 else None))
    return trace
