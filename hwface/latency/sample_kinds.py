"""The sampler's layer kinds, one registered entry each: its prior, its MAdds, its ONNX graph, how it varies.

A new kind is one :class:`Kind` in :data:`KIND_TABLE`. ``draw`` receives the
generator with the feature-map size and activation already drawn (every kind
draws them, in that order, so the seeded stream of configurations never
changes) and draws the rest in a fixed order; ``graph`` writes the layer into a
:class:`GraphBuilder` and returns its output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from hwface.errors import HwfaceError

ACTS = ("none", "relu", "prelu", "swish", "hardswish", "sigmoid")
SIZES = (112, 56, 28, 14, 7)
SIZE_WEIGHTS = (0.1, 0.25, 0.25, 0.25, 0.15)
CHANNELS = (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512)


def choice(rng, seq, p=None):
    return seq[int(rng.choice(len(seq), p=p))]


class GraphBuilder:
    """A tiny static ONNX graph under construction (float32, batch 1, seeded random weights)."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.inputs: list = []
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def init(self, arr: np.ndarray, dtype: str = "float32") -> str:
        from onnx import numpy_helper

        n = self.name("w") if dtype == "float32" else self.name("shape")
        self.inits.append(numpy_helper.from_array(arr.astype(dtype), n))
        return n

    def inp(self, shape) -> str:
        from onnx import TensorProto, helper

        n = f"input{len(self.inputs)}" if self.inputs else "input"
        self.inputs.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape)))
        return n

    def node(self, op: str, ins: list[str], scope: str, **attrs) -> str:
        from onnx import helper

        out = self.name("t")
        self.nodes.append(helper.make_node(op, ins, [out], name=f"/{scope}/{op}", **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, s: int, g: int, scope: str, pad: bool = True) -> str:
        w = self.init(self.rng.standard_normal((cout, cin // g, k, k)) * 0.1)
        b = self.init(self.rng.standard_normal(cout) * 0.1)
        pd = k // 2 if pad else 0
        return self.node("Conv", [x, w, b], scope, kernel_shape=[k, k], strides=[s, s], pads=[pd] * 4, group=g)

    def activation(self, x: str, act: str, c: int, scope: str) -> str:
        if act == "none":
            return x
        if act == "prelu":
            return self.node("PRelu", [x, self.init(np.full((c, 1, 1), 0.25))], scope)
        if act == "swish":
            return self.node("Mul", [x, self.node("Sigmoid", [x], scope)], scope)
        ops = {"relu": "Relu", "sigmoid": "Sigmoid", "hardswish": "HardSwish"}
        if act not in ops:
            raise HwfaceError(f"unknown activation {act!r}")
        return self.node(ops[act], [x], scope)

    def model(self, output: str, graph_name: str):
        """The checked ONNX model (opset 17, shapes inferred)."""
        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph(self.nodes, graph_name, self.inputs,
                                  [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        model = onnx.shape_inference.infer_shapes(model)
        onnx.checker.check_model(model)
        return model


@dataclass(frozen=True)
class Kind:
    """One sampler kind.

    Attributes
    ----------
    draw : callable
        ``draw(rng, hw, act) -> params`` (without ``hw``/``act`` where the kind has none).
    madds : callable
        ``madds(params, hw) -> int``: multiply-adds of its conv/linear parts.
    graph : callable
        ``graph(builder, params, hw) -> output name``.
    grouped : bool
        Channel counts move in steps of the group count (``g``) when varied.
    fixed_hw : bool
        The feature-map size is not varied (its kernel covers the map).
    """

    draw: Callable[[Any, int, str], dict]
    madds: Callable[[dict, int], int]
    graph: Callable[[GraphBuilder, dict, int], str]
    grouped: bool = False
    fixed_hw: bool = False


def _no_madds(p: dict, hw: int) -> int:
    return 0


# -- conv ---------------------------------------------------------------------------
def _draw_conv(rng, hw, act):
    k = choice(rng, (3, 5, 7, 1), (0.5, 0.2, 0.15, 0.15))
    cin = choice(rng, (3,) + CHANNELS[:8]) if hw == 112 else choice(rng, CHANNELS)
    cout = choice(rng, CHANNELS)
    return {"hw": hw, "cin": cin, "cout": cout, "k": k, "s": choice(rng, (1, 2)), "act": act}


def _graph_conv(b, p, hw):
    y = b.conv(b.inp((1, p["cin"], hw, hw)), p["cin"], p["cout"], p["k"], p["s"], 1, "conv")
    return b.activation(y, p["act"], p["cout"], "act")


# -- depthwise ------------------------------------------------------------------------
def _draw_dwconv(rng, hw, act):
    c = choice(rng, CHANNELS)
    k = choice(rng, (3, 5, 7))
    return {"hw": hw, "c": c, "k": k, "s": choice(rng, (1, 2)), "act": act}


def _graph_dwconv(b, p, hw):
    y = b.conv(b.inp((1, p["c"], hw, hw)), p["c"], p["c"], p["k"], p["s"], p["c"], "dw")
    return b.activation(y, p["act"], p["c"], "act")


# -- pointwise ------------------------------------------------------------------------
def _draw_pwconv(rng, hw, act):
    cin, cout = choice(rng, CHANNELS), choice(rng, CHANNELS)
    return {"hw": hw, "cin": cin, "cout": cout, "act": act, "residual": int(rng.random() < 0.2)}


def _graph_pwconv(b, p, hw):
    x = b.inp((1, p["cin"], hw, hw))
    y = b.activation(b.conv(x, p["cin"], p["cout"], 1, 1, 1, "pw"), p["act"], p["cout"], "act")
    return b.node("Add", [x, y], "res") if p.get("residual") and p["cin"] == p["cout"] else y


def _draw_gpwconv(rng, hw, act):
    g = choice(rng, (2, 3, 4, 6, 8, 12, 16))
    cin = g * int(rng.integers(2, 33))
    return {"hw": hw, "g": g, "cin": cin, "cout": g * int(rng.integers(2, 33)), "act": act}


def _graph_gpwconv(b, p, hw):
    y = b.conv(b.inp((1, p["cin"], hw, hw)), p["cin"], p["cout"], 1, 1, p["g"], "gpw")
    return b.activation(y, p["act"], p["cout"], "act")


# -- squeeze-and-excitation ------------------------------------------------------------
def _draw_se(rng, hw, act):
    c = choice(rng, CHANNELS[3:])
    r = choice(rng, (4, 8, 16))
    return {"hw": hw, "c": c, "r": r, "act": choice(rng, ("relu", "prelu"))}


def _graph_se(b, p, hw):
    c, r = p["c"], max(1, p["c"] // p["r"])
    x = b.inp((1, c, hw, hw))
    s = b.node("GlobalAveragePool", [x], "se/pool")
    s = b.activation(b.conv(s, c, r, 1, 1, 1, "se/fc1"), p["act"], r, "se/act")
    s = b.node("Sigmoid", [b.conv(s, r, c, 1, 1, 1, "se/fc2")], "se/gate")
    return b.node("Mul", [x, s], "se")


# -- element-wise and data movement -----------------------------------------------------
def _draw_activation(rng, hw, act):
    c = choice(rng, CHANNELS)
    return {"hw": hw, "c": c, "act": choice(rng, ACTS[1:])}


def _graph_activation(b, p, hw):
    return b.activation(b.inp((1, p["c"], hw, hw)), p["act"], p["c"], "act")


def _draw_shuffle(rng, hw, act):
    g = choice(rng, (2, 3, 4))
    return {"hw": hw, "g": g, "c": g * int(rng.integers(4, 65))}


def _graph_shuffle(b, p, hw):
    g, c = p["g"], p["c"]
    x = b.inp((1, c, hw, hw))
    s1 = b.init(np.array([1, g, c // g, hw, hw]), "int64")
    s2 = b.init(np.array([1, c, hw, hw]), "int64")
    y = b.node("Reshape", [x, s1], "shuffle")
    y = b.node("Transpose", [y], "shuffle", perm=[0, 2, 1, 3, 4])
    return b.node("Reshape", [y, s2], "shuffle")


def _draw_add(rng, hw, act):
    c = choice(rng, CHANNELS)
    return {"hw": hw, "c": c, "act": choice(rng, ("none", "relu", "prelu"))}


def _graph_add(b, p, hw):
    a, c = b.inp((1, p["c"], hw, hw)), b.inp((1, p["c"], hw, hw))
    return b.activation(b.node("Add", [a, c], "add"), p["act"], p["c"], "act")


def _draw_pool(rng, hw, act):
    op = choice(rng, ("max", "avg", "global"))
    c = choice(rng, CHANNELS)
    k = choice(rng, (2, 3))
    return {"hw": hw, "c": c, "op": op, "k": k, "s": choice(rng, (1, 2))}


def _graph_pool(b, p, hw):
    x = b.inp((1, p["c"], hw, hw))
    if p["op"] == "global" or hw < p["k"]:
        return b.node("GlobalAveragePool", [x], "pool")
    op = "MaxPool" if p["op"] == "max" else "AveragePool"
    return b.node(op, [x], "pool", kernel_shape=[p["k"]] * 2, strides=[p["s"]] * 2, pads=[(p["k"] - 1) // 2] * 4)


# -- heads ------------------------------------------------------------------------------
def _draw_fc(rng, hw, act):
    c = choice(rng, (128, 256, 512))
    side = choice(rng, (1, 4, 7))
    return {"fin": c * side * side, "fout": choice(rng, (128, 256, 512, 1024))}


def _graph_fc(b, p, hw):
    w = b.init(b.rng.standard_normal((p["fout"], p["fin"])) * 0.01)
    bias = b.init(b.rng.standard_normal(p["fout"]) * 0.01)
    return b.node("Gemm", [b.inp((1, p["fin"])), w, bias], "fc", transB=1)


def _draw_gdconv(rng, hw, act):
    hw = choice(rng, (4, 7, 14))
    return {"hw": hw, "c": choice(rng, (128, 256, 512, 1024))}


def _graph_gdconv(b, p, hw):
    return b.conv(b.inp((1, p["c"], hw, hw)), p["c"], p["c"], hw, 1, p["c"], "gdc", pad=False)


def _conv_madds(p, hw):
    o = hw // p["s"]
    return o * o * p["cout"] * p["cin"] * p["k"] ** 2


def _dw_madds(p, hw):
    o = hw // p["s"]
    return o * o * p["c"] * p["k"] ** 2


KIND_TABLE: dict[str, Kind] = {
    "conv": Kind(_draw_conv, _conv_madds, _graph_conv),
    "dwconv": Kind(_draw_dwconv, _dw_madds, _graph_dwconv),
    "pwconv": Kind(_draw_pwconv, lambda p, hw: hw * hw * p["cin"] * p["cout"], _graph_pwconv),
    "gpwconv": Kind(_draw_gpwconv, lambda p, hw: hw * hw * p["cin"] * p["cout"] // p["g"], _graph_gpwconv,
                    grouped=True),
    "se": Kind(_draw_se, lambda p, hw: 2 * p["c"] * (p["c"] // p["r"]), _graph_se),
    "activation": Kind(_draw_activation, _no_madds, _graph_activation),
    "shuffle": Kind(_draw_shuffle, _no_madds, _graph_shuffle, grouped=True),
    "add": Kind(_draw_add, _no_madds, _graph_add),
    "pool": Kind(_draw_pool, _no_madds, _graph_pool),
    "fc": Kind(_draw_fc, lambda p, hw: p["fin"] * p["fout"], _graph_fc),
    "gdconv": Kind(_draw_gdconv, lambda p, hw: p["c"] * hw * hw, _graph_gdconv, fixed_hw=True),
}
