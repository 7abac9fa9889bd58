"""The kernels of a fused Relax module and the network layers each one covers.

One kernel = one PrimFunc called by ``main`` of the module that
:func:`hwface.compile.pipeline.fuse` returns (e.g. ``fused_conv2d_add_prelu``
= Conv + bias + PReLU). This module lists the kernel *calls* of ``main`` in
execution order, with their argument shapes, and maps each one to the ONNX nodes
(hence the PyTorch modules) it computes.

How kernels are mapped to layers
--------------------------------
The Relax ONNX importer keeps no spans and FuseOps renames the variables (their
names even repeat within ``main``, so variables are told apart by identity,
:func:`var_labels`), and the mapping is rebuilt from the data, in three steps:

1. *Weights anchor kernels.* Every ONNX initializer (conv/linear weight, bias,
   PReLU slope) becomes a Relax constant that the kernel using it receives as an
   argument, with the same bytes (FoldConstant only reshapes them, or transposes
   a Gemm weight, which is hashed both ways). A kernel taking an initializer's
   bytes computes the ONNX node that reads that initializer.
2. *Tensors are matched.* The graph input/output are matched with ``main``'s;
   the first non-constant argument of an anchored kernel is the data input of
   its anchor node (FuseOps orders a fused kernel's parameters by first use, and
   a conv or matmul starts its group). A kernel output still unmatched is
   matched, in execution order, to the unclaimed ONNX tensor of its shape
   downstream of the kernel's matched inputs whose cone best computes the
   kernel's Relax ops (``conv2d+add+sigmoid+multiply`` is a biased Conv, a
   Sigmoid and a Mul: the Mul's output, not the Conv's).
3. *Cones.* A kernel covers the ONNX nodes between its output tensors (a split
   has several) and its inputs, plus its anchors: walking producers back from
   the outputs, stopping at every matched tensor (any kernel's input or output)
   and initializer, and never entering another kernel's anchor, so that a cone
   whose inputs were not matched still ends where the neighbouring kernels begin.

The conv and pooling attributes of a kernel do not come from this mapping but
from its own Relax op (:attr:`KernelCall.op_attrs`, :mod:`hwface.compile.op_attrs`).

PyTorch module names come from the ONNX node names, which the TorchScript
exporter builds from module scopes (``/backbone/body.0/conv/Conv`` ->
``backbone.body.0.conv``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwface.compile.op_attrs import OpAttrs
from hwface.errors import HwfaceError

# What hwface.compile.pipeline.fuse_traced returns beside the module: per call_tir of main, its kernel and op attributes.
Trace = list[tuple[str, "OpAttrs | None"]]

# Relax op names in a fused PrimFunc name carry a numeric suffix (conv2d1, add3).
_SUFFIX = re.compile(r"(?<=[a-z])\d+$")
_RELAX_OPS = (
    "conv2d_transpose", "conv2d", "conv1d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "global_avg_pool2d",
    "matmul", "dense", "batch_matmul", "prelu", "relu", "sigmoid", "tanh", "clip", "hardswish", "silu", "add",
    "subtract", "multiply", "divide", "maximum", "minimum", "reshape", "transpose", "permute_dims", "mean", "sum",
    "max", "concatenate", "split", "strided_slice", "squeeze", "expand_dims", "softmax", "log_softmax", "sqrt",
    "rsqrt", "power", "exp", "layer_norm", "batch_norm", "take", "where", "cast", "zeros", "ones", "full",
)


@dataclass(frozen=True)
class OnnxNode:
    """An ONNX node a kernel covers: name, op type, attributes (plain Python values), tensor names."""

    name: str
    op_type: str
    attrs: dict[str, Any] = field(compare=False, hash=False)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass
class KernelCall:
    """One call of a kernel by ``main``, in execution order.

    Attributes
    ----------
    index : int
        Position among the calls of ``main``.
    kernel : str
        PrimFunc name (e.g. ``fused_conv2d_add_prelu``); several calls may share one.
    relax_ops : tuple of str
        Relax ops fused into it, from the PrimFunc name (numeric suffixes dropped).
    arg_shapes : list of tuple
        Shapes of every argument (data and constants), then of the output(s).
    arg_dtypes : list of str
    arg_is_const : list of bool
        Per argument (outputs excluded): True for a weight constant.
    output_shape : tuple of int
    dtype : str
    nodes : list of OnnxNode
        ONNX nodes it computes (empty when the mapping found none).
    runs_as_view : bool
        No kernel in the artifact: a pure reshape, or (CPU targets) a channel split
        or concatenation, which the artifact runs as a view (see
        :func:`hwface.compile.build.kernels_left`).
    op_attrs : OpAttrs or None
        Attributes of the convolution or pooling it computes, read from its Relax
        op (:mod:`hwface.compile.op_attrs`); None for other kernels, or when
        :func:`kernel_calls` was given no trace.
    in_vars, out_var, item_vars : str
        Labels of its data arguments, its result and (a tuple result) the
        variables bound to the result's fields, in ``main`` (:func:`var_labels`).
    """

    index: int
    kernel: str
    relax_ops: tuple[str, ...]
    arg_shapes: list[tuple[int, ...]]
    arg_dtypes: list[str]
    arg_is_const: list[bool]
    output_shape: tuple[int, ...]
    dtype: str
    nodes: list[OnnxNode] = field(default_factory=list)
    runs_as_view: bool = False
    op_attrs: OpAttrs | None = None
    in_vars: list[str | None] = field(default_factory=list, repr=False)
    out_var: str = ""
    item_vars: list[str] = field(default_factory=list, repr=False)

    @property
    def data_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the non-constant inputs."""
        n = len(self.arg_is_const)
        return [s for s, c in zip(self.arg_shapes[:n], self.arg_is_const) if not c]

    @property
    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the constant inputs (weights, biases, slopes)."""
        n = len(self.arg_is_const)
        return [s for s, c in zip(self.arg_shapes[:n], self.arg_is_const) if c]

    @property
    def modules(self) -> list[str]:
        """PyTorch module names of the covered nodes (deduplicated, in order)."""
        out: list[str] = []
        for n in self.nodes:
            m = module_name(n.name)
            if m and m not in out:
                out.append(m)
        return out

    @property
    def onnx_ops(self) -> tuple[str, ...]:
        return tuple(n.op_type for n in self.nodes)


def module_name(node_name: str) -> str:
    """PyTorch module of a TorchScript-exported ONNX node.

    The exporter names a node ``/scope/scope/.../OpType``, where a scope is either
    an attribute (``body``) or the full path of a child relative to the last
    attribute (``body.0.0``): ``/backbone/backbone.10/body/body.0/body.0.0/Conv``
    -> ``backbone.10.body.0.0``. Nodes outside any module give ``""``.
    """
    scopes = [p for p in node_name.split("/") if p][:-1]
    path: list[str] = []
    for seg in scopes:
        if path and seg.startswith(path[-1] + "."):
            path[-1] = seg
        else:
            path.append(seg)
    return ".".join(path)


def relax_ops_of(kernel: str) -> tuple[str, ...]:
    """Relax op names fused into a PrimFunc named like ``fused_conv2d1_add_prelu``."""
    name = kernel[len("fused_"):] if kernel.startswith("fused_") else kernel
    tokens = [t for t in name.split("_") if t != "tir"]  # legalized ops may be named tir_sigmoid, tir_exp
    ops: list[str] = []
    i = 0
    while i < len(tokens):
        for width in (4, 3, 2, 1):
            cand = "_".join(tokens[i:i + width])
            base = _SUFFIX.sub("", cand)
            if width == 1 or base in _RELAX_OPS:
                ops.append(base)
                i += width
                break
    return tuple(ops)


def _shape(ty) -> tuple[int, ...]:
    return tuple(int(x) for x in ty.shape.values)


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _is_const(arg) -> bool:
    return hasattr(arg, "value") and hasattr(arg.value, "numpy")


def _tir_calls(main):
    """``(binding, call)`` of every ``call_tir`` of ``main``, in execution order."""
    from tvm import relax

    for block in main.body.blocks:
        for b in block.bindings:
            v = b.value
            if isinstance(v, relax.Call) and getattr(v.op, "name", "") == "relax.call_tir":
                yield b, v


def var_labels(main) -> dict[Any, str]:
    """A unique label per variable of ``main`` (parameters and bindings): its name, ``name#k`` for a repeat.

    Names are not unique: a fused ``main`` may bind the importer's ``lv117`` and
    FuseOps' ``lv117`` both, so tensors are told apart by variable, not name.
    """
    labels: dict[Any, str] = {}
    seen: dict[str, int] = {}
    variables = list(main.params) + [b.var for block in main.body.blocks for b in block.bindings]
    for var in variables:
        k = seen.get(var.name, 0)
        seen[var.name] = k + 1
        labels[var] = var.name if k == 0 else f"{var.name}#{k}"
    return labels


def _tuple_items(main, labels: dict) -> dict[Any, list[str]]:
    """Tuple variable of ``main`` -> labels of the variables bound to its fields."""
    from tvm import relax

    items: dict[Any, list[str]] = {}
    for block in main.body.blocks:
        for b in block.bindings:
            if isinstance(b.value, relax.TupleGetItem):
                items.setdefault(b.value.tuple_value, []).append(labels[b.var])
    return items


def _kernel_call(index: int, binding, call, labels: dict, items: dict, surviving: set[str]) -> KernelCall:
    name = call.args[0].name_hint
    shapes, dtypes, consts, in_vars = [], [], [], []
    for a in call.args[1]:
        const = _is_const(a)
        shapes.append(tuple(int(d) for d in a.value.shape) if const else _shape(a.ty))
        dtypes.append(str(a.value.dtype if const else a.ty.dtype))
        consts.append(const)
        in_vars.append(None if const else labels.get(a, a.name))
    outs = call.ty_args
    for t in list(outs[0].fields) if hasattr(outs[0], "fields") else [outs[0]]:
        shapes.append(_shape(t))
        dtypes.append(str(t.dtype))
    return KernelCall(
        index=index, kernel=name, relax_ops=relax_ops_of(name), arg_shapes=shapes, arg_dtypes=dtypes,
        arg_is_const=consts, output_shape=shapes[len(consts)], dtype=dtypes[len(consts)],
        runs_as_view=name not in surviving, in_vars=in_vars, out_var=labels[binding.var],
        item_vars=items.get(binding.var, []),
    )


def kernel_calls(fused, views: bool = False, trace: Trace | None = None) -> list[KernelCall]:
    """The kernel calls of ``fused["main"]`` in execution order (no ONNX mapping).

    Parameters
    ----------
    fused : tvm.IRModule
        From :func:`hwface.compile.pipeline.fuse`.
    views : bool
        The artifact runs channel splits and concatenations as views (CPU
        targets, :func:`hwface.compile.slice_views.uses_views`).
    trace : list, optional
        The trace :func:`hwface.compile.pipeline.fuse_traced` returned with
        ``fused``: fills each call's :attr:`KernelCall.op_attrs`.

    Raises
    ------
    HwfaceError
        ``trace`` names other kernels than ``fused`` calls.
    """
    from hwface.compile.build import kernels_left

    main = fused["main"]
    surviving = kernels_left(fused, views)
    labels = var_labels(main)
    items = _tuple_items(main, labels)
    calls = [_kernel_call(i, b, v, labels, items, surviving) for i, (b, v) in enumerate(_tir_calls(main))]
    if trace is not None:
        _attach_trace(calls, trace)
    return calls


def _attach_trace(calls: list[KernelCall], trace: Trace) -> None:
    names = [name for name, _ in trace]
    if names != [c.kernel for c in calls]:
        diff = next((i for i, (a, c) in enumerate(zip(names, calls)) if a != c.kernel), min(len(names), len(calls)))
        raise HwfaceError(f"the op trace does not belong to this fused module: {len(names)} traced calls for "
                          f"{len(calls)} kernel calls, first difference at call {diff}")
    for c, (_, attrs) in zip(calls, trace):
        c.op_attrs = attrs


def trace_onnx(onnx_model) -> Trace:
    """Fuse ``onnx_model`` once more to trace its kernels' ops (see :func:`hwface.compile.pipeline.fuse_traced`).

    Costs one more fuse (seesaw_share: 3 s): callers that fuse should keep the
    trace of :func:`~hwface.compile.pipeline.fuse_traced` instead. The fused
    kernels do not depend on the target (seesaw_share fuses bit-identically for
    host, android-arm64, linux-arm64, android-mali and android-adreno), so the
    current target, or the host's LLVM, is used; :func:`kernel_calls` checks the
    trace against the module by name.
    """
    import tvm

    from hwface.compile.pipeline import fuse_traced
    from hwface.compile.relax_import import import_onnx

    target = tvm.target.Target.current(allow_none=True) or tvm.target.Target({"kind": "llvm"})
    return fuse_traced(import_onnx(onnx_model), target)[1]


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        val = helper.get_attribute_value(a)
        if isinstance(val, bytes):
            val = val.decode()
        elif isinstance(val, (list, tuple)):
            val = [v.decode() if isinstance(v, bytes) else v for v in val]
        elif not isinstance(val, (int, float, str)):
            continue  # tensors and graphs: not needed for keys
        out[a.name] = val
    return out


@dataclass
class _Graph:
    """The ONNX graph as the mapping needs it: nodes in order (weight Identities dropped), producers, weights."""

    nodes: list[OnnxNode]
    producer: dict[str, OnnxNode]
    inits: set[str]
    alias: dict[str, str]
    order: dict[str, int]
    consumers: dict[str, list[OnnxNode]]


def _onnx_graph(onnx_model) -> _Graph:
    graph = onnx_model.graph
    nodes = [OnnxNode(n.name or f"{n.op_type}_{i}", n.op_type, _attrs(n), tuple(n.input), tuple(n.output))
             for i, n in enumerate(graph.node)]
    inits = {i.name for i in graph.initializer}
    # the exporter deduplicates equal weights into one initializer read through Identity nodes
    alias: dict[str, str] = {}
    for n in nodes:
        if n.op_type in ("Identity", "Constant") and (not n.inputs or n.inputs[0] in inits):
            for t in n.outputs:
                alias[t] = n.inputs[0] if n.inputs else t
    nodes = [n for n in nodes if n.outputs[0] not in alias]
    producer = {t: n for n in nodes for t in n.outputs}
    order = {t: k for k, n in enumerate(nodes) for t in n.outputs}
    consumers: dict[str, list[OnnxNode]] = {}
    for n in nodes:
        for t in dict.fromkeys(n.inputs):
            consumers.setdefault(t, []).append(n)
    return _Graph(nodes, producer, inits | set(alias), alias, order, consumers)


def _weight_users(onnx_model, g: _Graph) -> dict[str, list[OnnxNode]]:
    """Digest of every non-scalar initializer (and of its transpose, for 2-D) -> the nodes reading it."""
    from onnx import numpy_helper

    by_digest: dict[str, list[OnnxNode]] = {}
    for init in onnx_model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.size <= 1:
            continue  # scalars are shared by too many nodes to identify one
        names = {init.name} | {a for a, src in g.alias.items() if src == init.name}
        users = list(dict.fromkeys(n for name in sorted(names) for n in g.consumers.get(name, ())))
        digests = {_digest(arr)} | ({_digest(arr.T)} if arr.ndim == 2 else set())
        for d in digests:
            by_digest.setdefault(d, []).extend(u for u in users if u not in by_digest.get(d, []))
    return by_digest


def _anchors(fused, calls: list[KernelCall], by_digest: dict[str, list[OnnxNode]]) -> dict[int, list[OnnxNode]]:
    """Step 1: per call, the ONNX nodes whose weights it takes (a weight read by several nodes anchors none)."""
    const_digests = {i: [_digest(a.value.numpy()) for a in v.args[1] if _is_const(a)]
                     for i, (_, v) in enumerate(_tir_calls(fused["main"]))}
    claimed: set[str] = set()
    anchors: dict[int, list[OnnxNode]] = {}
    for c in calls:
        found: list[OnnxNode] = []
        for d in const_digests.get(c.index, []):
            users = by_digest.get(d, [])
            if len(users) == 1 and users[0].name not in claimed and users[0] not in found:
                found.append(users[0])
        claimed.update(n.name for n in found)
        anchors[c.index] = found
    return anchors


_CONV_LIKE = ("Conv", "Gemm", "MatMul", "ConvTranspose")


def _match_tensors(main, onnx_model, calls: list[KernelCall], anchors: dict[int, list[OnnxNode]],
                   g: _Graph) -> dict[str, str]:
    """Step 2: variable label -> ONNX tensor name, for the variables the kernels read and write."""
    graph = onnx_model.graph
    labels = var_labels(main)
    var_tensor: dict[str, str] = {}
    real_inputs = [i.name for i in graph.input if i.name not in g.inits]
    for p, t in zip(main.params, real_inputs):
        var_tensor[labels[p]] = t
    ret = main.body.body
    if ret in labels and graph.output:
        var_tensor[labels[ret]] = graph.output[0].name
    for c in calls:
        data_vars = [v for v in c.in_vars if v is not None]
        conv_like = [n for n in anchors[c.index] if n.op_type in _CONV_LIKE]
        if conv_like and data_vars and conv_like[0].inputs:
            var_tensor.setdefault(data_vars[0], conv_like[0].inputs[0])
    _match_outputs(calls, anchors, g, var_tensor, _tensor_shapes(onnx_model))
    return var_tensor


def _match_outputs(calls: list[KernelCall], anchors: dict[int, list[OnnxNode]], g: _Graph,
                   var_tensor: dict[str, str], shapes: dict[str, tuple[int, ...]]) -> None:
    """Step 2, outputs: each call's unmatched output -> the tensor downstream of its inputs it computes best.

    Candidates are the unclaimed tensors of the output's shape downstream of the
    call's matched inputs; the one whose cone (:func:`_cone`) computes the
    kernel's Relax ops (:func:`_op_distance`) wins, the earliest on a tie.
    """
    taken = set(var_tensor.values())
    anchored = {n.name for a in anchors.values() for n in a}
    for c in calls:
        if c.out_var in var_tensor or any(v in var_tensor for v in c.item_vars):
            continue
        srcs = [var_tensor[v] for v in c.in_vars if v is not None and v in var_tensor]
        cands = [t for t in _downstream(srcs, g) if t not in taken and shapes.get(t) == c.output_shape]
        if cands:
            foreign = anchored - {n.name for n in anchors[c.index]}
            best = min(cands, key=lambda t: (_op_distance(c, anchors[c.index], _cone([t], taken | g.inits, g, foreign)),
                                             g.order[t]))
            var_tensor[c.out_var] = best
            taken.add(best)


# The Relax ops (as fused kernel names spell them) an ONNX node imports to, where not one lower-cased op.
_AS_RELAX = {
    "Conv": ("conv2d",), "Gemm": ("matmul",), "MatMul": ("matmul",), "Add": ("add",), "Sub": ("subtract",),
    "Mul": ("multiply",), "Div": ("divide",), "PRelu": ("prelu",), "GlobalAveragePool": ("mean",),
    "ReduceMean": ("mean",), "Concat": ("concatenate",), "Flatten": ("reshape",), "Transpose": ("permute_dims",),
    "Unsqueeze": ("expand_dims",), "MaxPool": ("max_pool2d",), "AveragePool": ("avg_pool2d",),
    "HardSwish": ("add", "clip", "divide", "multiply"), "HardSigmoid": ("multiply", "add", "clip"),
    "Identity": (), "Constant": (), "Shape": (), "Gather": (), "Cast": (),
}


def _op_distance(call: KernelCall, anchors: list[OnnxNode], cone: list[OnnxNode]) -> int:
    """How many Relax ops the cone's and anchors' ONNX nodes import to that the kernel lacks, plus the converse."""
    from collections import Counter

    onnx_ops: Counter = Counter()
    for n in cone + [a for a in anchors if a not in cone]:
        onnx_ops.update(_AS_RELAX.get(n.op_type, (n.op_type.lower(),)))
        if n.op_type in ("Conv", "Gemm") and len(n.inputs) > 2 and n.inputs[2]:
            onnx_ops["add"] += 1  # the bias
    kernel = Counter(call.relax_ops)
    return sum(((onnx_ops - kernel) + (kernel - onnx_ops)).values())


def _cone(outs: list[str], stop: set[str], g: _Graph, foreign: set[str]) -> list[OnnxNode]:
    """Step 3: the nodes computing the ``outs`` tensors from the ``stop`` tensors, never entering a ``foreign`` node."""
    covered: list[OnnxNode] = []
    stack, seen = list(outs), set()
    while stack:
        t = stack.pop()
        if t in seen or (t in stop and t not in outs):
            continue
        seen.add(t)
        n = g.producer.get(t)
        if n is None or n.name in foreign:
            continue
        if n not in covered:
            covered.append(n)
        stack.extend(x for x in n.inputs if x)
    return covered


def map_to_onnx(fused, onnx_model, calls: list[KernelCall] | None = None, views: bool = False,
                trace: Trace | None = None) -> list[KernelCall]:
    """Kernel calls of ``fused`` with the ONNX nodes each computes (see the module docstring).

    Parameters
    ----------
    fused : tvm.IRModule
        From :func:`hwface.compile.pipeline.fuse` on ``onnx_model``'s import.
    onnx_model : onnx.ModelProto
    calls : list of KernelCall, optional
        From :func:`kernel_calls` (default: made here, with ``views`` and ``trace``).
    views : bool
        As in :func:`kernel_calls`.
    trace : list, optional
        As in :func:`kernel_calls`; without it, ``onnx_model`` is fused once more
        to trace it (:func:`trace_onnx`).
    """
    if calls is None:
        calls = kernel_calls(fused, views, trace if trace is not None else trace_onnx(onnx_model))
    g = _onnx_graph(onnx_model)
    anchors = _anchors(fused, calls, _weight_users(onnx_model, g))
    var_tensor = _match_tensors(fused["main"], onnx_model, calls, anchors, g)
    matched = set(var_tensor.values()) | g.inits
    anchored = {n.name for a in anchors.values() for n in a}
    pos = {n.name: k for k, n in enumerate(g.nodes)}
    for c in calls:
        covered = list(anchors[c.index])
        outs = [var_tensor[v] for v in [c.out_var, *c.item_vars] if v in var_tensor]
        foreign = anchored - {n.name for n in covered}
        covered += [n for n in _cone(outs, matched, g, foreign) if n not in covered]
        c.nodes = sorted(covered, key=lambda n: pos.get(n.name, 0))
    return calls


def _downstream(tensors: list[str], g: _Graph, depth: int = 12) -> set[str]:
    """Tensors computed from ``tensors`` by at most ``depth`` nodes."""
    out: set[str] = set()
    frontier = set(tensors)
    for _ in range(depth):
        nxt = {t for x in frontier for n in g.consumers.get(x, ()) for t in n.outputs} - out
        if not nxt:
            break
        out |= nxt
        frontier = nxt
    return out


def _tensor_shapes(onnx_model) -> dict[str, tuple[int, ...]]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(onnx_model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(int(d.dim_value) for d in dims)
    return shapes


def kernel_madds(call: KernelCall) -> int:
    """Multiply-adds of a kernel call: conv and matmul/linear only (the papers' convention).

    Computed from the kernel's own shapes: conv weight (O, I/g, kh, kw) gives
    ``prod(output) * I/g * kh * kw``; matmul weight (K, N) gives ``prod(output) * K``.
    """
    ops = set(call.relax_ops)
    w = call.weight_shapes
    out = int(np.prod(call.output_shape)) if call.output_shape else 0
    if "conv2d" in ops and w and len(w[0]) == 4:
        _, cin_g, kh, kw = w[0]
        return out * cin_g * kh * kw
    if ("matmul" in ops or "dense" in ops) and call.data_shapes:
        k = call.data_shapes[0][-1]
        return out * k
    return 0
