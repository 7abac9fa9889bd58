"""The one canonical layer key: what a kernel computes, independent of the network it is in.

A :class:`LayerKey` is built in exactly one place, :func:`layer_key`, from a
:class:`~hwface.latency.kernels.KernelCall` (a fused TVM kernel and the ONNX
nodes it covers). The profiler, the sampler and the latency database all key
their rows with it, so the same layer in two networks gets the same key, and
``LayerKey.from_str(k.to_str()) == k``.

The string form is ``field=value`` pairs joined by ``|`` in field order, e.g.::

    op=conv|fused=conv2d+add+prelu|in=1x64x56x56|out=1x64x56x56|k=3x3|s=1x1|p=1x1x1x1|d=1x1|g=1|act=prelu|dt=float32
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from hwface.errors import HwfaceError

ACTIVATIONS = ("relu", "prelu", "sigmoid", "swish", "hardswish", "clip", "tanh")
OP_KINDS = ("conv", "dwconv", "gdconv", "pwconv", "gpwconv", "gconv", "fc", "matmul", "maxpool", "avgpool", "globalpool",
            "elementwise", "activation", "reshape", "transpose", "reduce", "concat", "other")


class LayerKeyError(HwfaceError):
    """A malformed layer key string."""


@dataclass(frozen=True)
class LayerKey:
    """What one kernel computes.

    Attributes
    ----------
    op : str
        Kind (one of :data:`OP_KINDS`): ``dwconv`` is a depthwise conv
        (``gdconv`` when its kernel covers the whole feature map),
        ``pwconv``/``gpwconv`` a (grouped) 1x1 conv, ``fc`` a matmul with a
        weight constant, ``elementwise`` an add/multiply of tensors.
    fused : tuple of str
        Relax ops fused into the kernel, in order (``conv2d, add, prelu``).
    input_shapes : tuple of tuple of int
        Shapes of the data inputs (weights excluded), in argument order.
    output_shape : tuple of int
    kernel, stride, dilation : (int, int) or None
        Conv and pooling only.
    padding : (int, int, int, int) or None
        Top, left, bottom, right.
    groups : int or None
    activation : str or None
        Last activation fused in (one of :data:`ACTIVATIONS`).
    dtype : str
    """

    op: str
    fused: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int, int, int] | None = None
    dilation: tuple[int, int] | None = None
    groups: int | None = None
    activation: str | None = None
    dtype: str = "float32"

    def to_str(self) -> str:
        """The canonical string (see the module docstring)."""
        return "|".join(f"{_ABBR[f.name]}={_enc(f.name, getattr(self, f.name))}" for f in fields(self))

    @classmethod
    def from_str(cls, text: str) -> "LayerKey":
        """Parse :meth:`to_str` output.

        Raises
        ------
        LayerKeyError
        """
        parts = text.strip().split("|")
        names = [f.name for f in fields(cls)]
        if len(parts) != len(names):
            raise LayerKeyError(f"layer key {text!r} has {len(parts)} fields, expected {len(names)}")
        values: dict[str, Any] = {}
        for name, part in zip(names, parts):
            abbr, sep, raw = part.partition("=")
            if not sep or abbr != _ABBR[name]:
                raise LayerKeyError(f"layer key {text!r}: expected field {_ABBR[name]}= , got {part!r}")
            try:
                values[name] = _dec(name, raw)
            except ValueError:
                raise LayerKeyError(f"layer key {text!r}: bad value {raw!r} for {_ABBR[name]}") from None
        return cls(**values)

    def fields_dict(self) -> dict[str, Any]:
        """Structured fields as plain values (tuples as ``AxB`` strings, for tables and SQL)."""
        return {f.name: _enc(f.name, getattr(self, f.name)) for f in fields(self)}

    def __str__(self) -> str:
        return self.to_str()


_ABBR = {"op": "op", "fused": "fused", "input_shapes": "in", "output_shape": "out", "kernel": "k", "stride": "s",
         "padding": "p", "dilation": "d", "groups": "g", "activation": "act", "dtype": "dt"}
_TUPLES = {"output_shape", "kernel", "stride", "padding", "dilation"}


def _enc(name: str, v: Any) -> str:
    if v is None:
        return "-"
    if name == "fused":
        return "+".join(v)
    if name == "input_shapes":
        return ",".join("x".join(map(str, s)) for s in v) or "-"
    if name in _TUPLES:
        return "x".join(map(str, v))
    return str(v)


def _dec(name: str, raw: str) -> Any:
    if raw == "-":
        return () if name in ("input_shapes", "fused") else None
    if name == "fused":
        return tuple(raw.split("+"))
    if name == "input_shapes":
        return tuple(tuple(int(x) for x in s.split("x")) for s in raw.split(","))
    if name in _TUPLES:
        return tuple(int(x) for x in raw.split("x"))
    if name == "groups":
        return int(raw)
    return raw


def _activation(ops: tuple[str, ...]) -> str | None:
    s = set(ops)
    if "sigmoid" in s and "multiply" in s:
        return "swish"
    if "hardswish" in s or ("clip" in s and ("multiply" in s or "divide" in s)):
        return "hardswish"
    for op in reversed(ops):
        if op in ACTIVATIONS:
            return op
    return None


def _conv_window(call, data, out) -> tuple:
    """(kernel, stride, padding, dilation, groups) of a conv kernel call.

    From the kernel's own ``relax.nn.conv2d`` (:attr:`KernelCall.op_attrs`), or,
    untraced, inferred from the weight and data shapes (symmetric padding).
    """
    a = call.op_attrs
    if a is not None and a.op == "conv2d":
        return a.kernel, a.stride, a.padding, a.dilation, a.groups
    weights = call.weight_shapes
    w = weights[0] if weights and len(weights[0]) == 4 else None
    if w is None or not data or len(data[0]) != 4:
        return None, None, None, None, None
    kernel = (int(w[2]), int(w[3]))
    stride = tuple(max(1, round(data[0][i] / out[i])) for i in (2, 3))
    ph = max(0, (out[2] - 1) * stride[0] + kernel[0] - data[0][2])
    pw = max(0, (out[3] - 1) * stride[1] + kernel[1] - data[0][3])
    return kernel, stride, (ph // 2, pw // 2, ph - ph // 2, pw - pw // 2), (1, 1), data[0][1] // int(w[1])


def _conv_kind(kernel, groups, data, out) -> str:
    """``conv``, ``gconv``, ``dwconv``, ``gdconv``, ``pwconv`` or ``gpwconv``."""
    cin = data[0][1] if data and len(data[0]) == 4 else None
    if kernel is None or cin is None or groups is None:
        return "conv"
    if groups > 1 and groups == cin and out[1] == cin:
        return "gdconv" if out[2:] == (1, 1) and tuple(kernel) == tuple(data[0][2:]) else "dwconv"
    if tuple(kernel) == (1, 1):
        return "gpwconv" if groups > 1 else "pwconv"
    return "gconv" if groups > 1 else "conv"


def _pool_window(call) -> tuple:
    """(kernel, stride, padding) of a pooling kernel call: its Relax op's, or its ONNX node's when untraced."""
    a = call.op_attrs
    if a is not None and a.op in ("max_pool2d", "avg_pool2d"):
        return a.kernel, a.stride, a.padding
    node = next((n for n in call.nodes if n.op_type in ("MaxPool", "AveragePool")), None)
    if node is None:
        return None, None, None
    return (tuple(node.attrs.get("kernel_shape", (1, 1))), tuple(node.attrs.get("strides", (1, 1))),
            tuple(node.attrs.get("pads", (0, 0, 0, 0))))


def layer_key(call) -> LayerKey:
    """The key of a kernel call (:class:`~hwface.latency.kernels.KernelCall`): the one place keys are built.

    Conv and pooling attributes come from the kernel's own Relax op
    (``call.op_attrs``, see :mod:`hwface.compile.op_attrs`); an untraced call
    infers a conv's from its weight and data shapes, a pooling's from the ONNX
    node it covers.
    """
    ops = tuple(call.relax_ops)
    s = set(ops)
    data = tuple(tuple(x) for x in call.data_shapes)
    weights = call.weight_shapes
    out = tuple(call.output_shape)
    kernel = stride = padding = dilation = groups = None
    if "conv2d" in s:
        kernel, stride, padding, dilation, groups = _conv_window(call, data, out)
        op = _conv_kind(kernel, groups, data, out)
    elif "matmul" in s or "dense" in s:
        op = "fc" if weights else "matmul"
    elif s & {"max_pool2d", "avg_pool2d"}:
        op = "maxpool" if "max_pool2d" in s else "avgpool"
        kernel, stride, padding = _pool_window(call)
    elif s & {"adaptive_avg_pool2d", "global_avg_pool2d"} or (s & {"mean"} and len(out) == 4 and out[2:] == (1, 1)):
        op = "globalpool"
    elif s & {"mean", "sum", "max"}:
        op = "reduce"
    elif s <= {"reshape", "squeeze", "expand_dims"}:
        op = "reshape"
    elif s & {"transpose", "permute_dims"}:
        op = "transpose"
    elif "concatenate" in s:
        op = "concat"
    elif len(data) >= 2 and s & {"add", "multiply", "subtract", "divide"}:
        op = "elementwise"
    elif _activation(ops) is not None:
        op = "activation"
    elif s & {"add", "multiply", "subtract", "divide"}:
        op = "elementwise"
    else:
        op = "other"
    return LayerKey(
        op=op, fused=ops, input_shapes=data, output_shape=out,
        kernel=tuple(int(x) for x in kernel) if kernel is not None else None,
        stride=tuple(int(x) for x in stride) if stride is not None else None,
        padding=tuple(int(x) for x in padding) if padding is not None else None,
        dilation=tuple(int(x) for x in dilation) if dilation is not None else None,
        groups=groups, activation=_activation(ops), dtype=call.dtype,
    )
