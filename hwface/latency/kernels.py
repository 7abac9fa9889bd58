"""The kernels of a fused Relax module and the network layers each one covers.

One kernel = one PrimFunc called by ``main`` of the module that
:func:`hwface.compile.pipeline.fuse` returns (e.g. ``fused_conv2d_add_prelu``
= Conv + bias + PReLU). This module lists the kernel *calls* of ``main`` in
execution order, with their argument shapes, and maps each one to the ONNX nodes
(hence the PyTorch modules) it computes.

How kernels are mapped to layers
--------------------------------
The Relax ONNX importer keeps no spans and FuseOps renames the variables, so the
mapping is rebuilt from the data, in three steps:

1. *Weights anchor kernels.* Every ONNX initializer (conv/linear weight, bias,
   PReLU slope) becomes a Relax constant that the kernel using it receives as an
   argument, with the same bytes (FoldConstant only reshapes them, or transposes
   a Gemm weight, which is hashed both ways). A kernel taking an initializer's
   bytes computes the ONNX node that reads that initializer.
2. *Tensors are matched.* The graph input/output are matched with ``main``'s;
   the first non-constant argument of an anchored kernel is the data input of
   its anchor node (FuseOps orders a fused kernel's parameters by first use, and
   a conv or matmul starts its group). Kernel outputs still unmatched are
   matched, in execution order, to the first unclaimed ONNX tensor of the same
   shape downstream of the kernel's matched inputs.
3. *Cones.* A kernel covers the ONNX nodes between its input tensors and its
   output tensor (walking producers back from the output, stopping at inputs
   and initializers), plus its anchors.

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
    in_vars: list[str | None] = field(default_factory=list, repr=False)
    out_var: str = ""

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


def kernel_calls(fused, views: bool = False) -> list[KernelCall]:
    """The kernel calls of ``fused["main"]`` in execution order (no ONNX mapping).

    ``views``: the artifact runs channel splits and concatenations as views (CPU
    targets, :func:`hwface.compile.slice_views.uses_views`).
    """
    from tvm import relax

    from hwface.compile.build import kernels_left

    main = fused["main"]
    surviving = kernels_left(fused, views)
    calls: list[KernelCall] = []
    for block in main.body.blocks:
        for b in block.bindings:
            v = b.value
            if not isinstance(v, relax.Call) or getattr(v.op, "name", "") != "relax.call_tir":
                continue
            name = v.args[0].name_hint
            shapes, dtypes, consts, in_vars = [], [], [], []
            for a in v.args[1]:
                if hasattr(a, "value") and hasattr(a.value, "numpy"):
                    shapes.append(tuple(int(d) for d in a.value.shape))
                    dtypes.append(str(a.value.dtype))
                    consts.append(True)
                    in_vars.append(None)
                else:
                    shapes.append(_shape(a.ty))
                    dtypes.append(str(a.ty.dtype))
                    consts.append(False)
                    in_vars.append(a.name)
            outs = v.ty_args
            out_tys = list(outs[0].fields) if hasattr(outs[0], "fields") else [outs[0]]
            for t in out_tys:
                shapes.append(_shape(t))
                dtypes.append(str(t.dtype))
            calls.append(KernelCall(
                index=len(calls), kernel=name, relax_ops=relax_ops_of(name), arg_shapes=shapes,
                arg_dtypes=dtypes, arg_is_const=consts, output_shape=shapes[len(consts)], dtype=dtypes[len(consts)],
                runs_as_view=name not in surviving, in_vars=in_vars, out_var=b.var.name,
            ))
    return calls


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


def map_to_onnx(fused, onnx_model, calls: list[KernelCall] | None = None, views: bool = False) -> list[KernelCall]:
    """Kernel calls of ``fused`` with the ONNX nodes each computes (see the module docstring).

    ``views`` as in :func:`kernel_calls`.
    """
    from onnx import numpy_helper

    from tvm import relax

    calls = kernel_calls(fused, views) if calls is None else calls
    graph = onnx_model.graph
    nodes = [OnnxNode(n.name or f"{n.op_type}_{i}", n.op_type, _attrs(n), tuple(n.input), tuple(n.output))
             for i, n in enumerate(graph.node)]
    producer = {t: n for n in nodes for t in n.outputs}
    inits = {i.name for i in graph.initializer}
    # the exporter deduplicates equal weights into one initializer read through Identity nodes
    alias: dict[str, str] = {}
    for n in nodes:
        if n.op_type in ("Identity", "Constant") and (not n.inputs or n.inputs[0] in inits):
            for t in n.outputs:
                alias[t] = n.inputs[0] if n.inputs else t
    nodes = [n for n in nodes if n.outputs[0] not in alias]
    inits |= set(alias)
    producer = {t: n for n in nodes for t in n.outputs}
    by_digest: dict[str, list[OnnxNode]] = {}
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.size <= 1:
            continue  # scalars are shared by too many nodes to identify one
        names = {init.name} | {a for a, src in alias.items() if src == init.name}
        users = [n for n in nodes if names & set(n.inputs)]
        digests = {_digest(arr)}
        if arr.ndim == 2:
            digests.add(_digest(arr.T))
        for d in digests:
            by_digest.setdefault(d, []).extend(u for u in users if u not in by_digest.get(d, []))

    # constant digests per call (reading constants back from main)
    main = fused["main"]
    const_digests: dict[int, list[str]] = {}
    i = 0
    for block in main.body.blocks:
        for b in block.bindings:
            v = b.value
            if not isinstance(v, relax.Call) or getattr(v.op, "name", "") != "relax.call_tir":
                continue
            const_digests[i] = [_digest(a.value.numpy()) for a in v.args[1]
                                if hasattr(a, "value") and hasattr(a.value, "numpy")]
            i += 1

    claimed: set[str] = set()
    anchors: dict[int, list[OnnxNode]] = {}
    for c in calls:
        found: list[OnnxNode] = []
        for d in const_digests.get(c.index, []):
            users = by_digest.get(d, [])
            if len(users) == 1 and users[0].name not in claimed and users[0] not in found:
                found.append(users[0])  # equal weights in several nodes identify none of them
        for n in found:
            claimed.add(n.name)
        anchors[c.index] = found

    # step 2: tensors
    var_tensor: dict[str, str] = {}
    real_inputs = [i.name for i in graph.input if i.name not in inits]
    for p, t in zip(main.params, real_inputs):
        var_tensor[p.name] = t
    ret = main.body.body
    if hasattr(ret, "name") and graph.output:
        var_tensor[ret.name] = graph.output[0].name
    for c in calls:
        data_vars = [v for v in c.in_vars if v is not None]
        conv_like = [n for n in anchors[c.index] if n.op_type in ("Conv", "Gemm", "MatMul", "ConvTranspose")]
        if conv_like and data_vars and conv_like[0].inputs:
            var_tensor.setdefault(data_vars[0], conv_like[0].inputs[0])
    tensor_shapes = _tensor_shapes(onnx_model)
    order = {t: k for k, n in enumerate(nodes) for t in n.outputs}
    taken = set(var_tensor.values())
    for c in calls:
        if c.out_var in var_tensor:
            continue
        srcs = [var_tensor[v] for v in c.in_vars if v is not None and v in var_tensor]
        if not srcs:
            continue
        down = _downstream(srcs, nodes)
        cands = sorted((t for t in down if t not in taken and tensor_shapes.get(t) == c.output_shape),
                       key=lambda t: order.get(t, 1 << 30))
        if cands:
            var_tensor[c.out_var] = cands[0]
            taken.add(cands[0])

    # step 3: cones
    for c in calls:
        covered = list(anchors[c.index])
        out_t = var_tensor.get(c.out_var)
        if out_t is not None:
            stop = {var_tensor[v] for v in c.in_vars if v is not None and v in var_tensor} | inits
            stack, seen = [out_t], set()
            while stack:
                t = stack.pop()
                if t in seen or t in stop:
                    continue
                seen.add(t)
                n = producer.get(t)
                if n is None:
                    continue
                if n not in covered:
                    covered.append(n)
                stack.extend(x for x in n.inputs if x)
        pos = {n.name: k for k, n in enumerate(nodes)}
        c.nodes = sorted(covered, key=lambda n: pos.get(n.name, 0))
    return calls


def _downstream(tensors: list[str], nodes: list[OnnxNode], depth: int = 12) -> set[str]:
    out: set[str] = set()
    frontier = set(tensors)
    for _ in range(depth):
        nxt = set()
        for n in nodes:
            if frontier & set(n.inputs):
                nxt.update(n.outputs)
        nxt -= out
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
