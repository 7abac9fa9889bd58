"""Every zoo network's kernels map to a few neighbouring modules, and conv keys say what the kernel computes.

Each network is exported, fused for the host and mapped once (:func:`zoo_kernels`);
the checks then read the light summary it keeps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest

from hwface.latency.kernels import KernelCall, OnnxNode
from hwface.latency.key import layer_key
from tests.zoo_sweep import swept_models

pytestmark = pytest.mark.slow  # the zoo sweep through Relax

# A kernel is one layer plus what FuseOps fused into it (bias, activation, residual add,
# a following split): a handful of modules. The whole-network cones of issue 13 had 56 and 259.
MAX_MODULES = 6


@dataclass(frozen=True)
class ZooKernels:
    """What the checks need of one fused zoo network (not the ONNX weights, so all 28 stay cached)."""

    calls: list[KernelCall]
    consumers: dict[str, list[OnnxNode]]


@functools.lru_cache(maxsize=None)
def zoo_kernels(name: str) -> ZooKernels:
    """The kernel calls of zoo network ``name`` fused for the host, mapped to its ONNX nodes."""
    from hwface.compile.network import load_network
    from hwface.compile.pipeline import fuse_traced
    from hwface.compile.relax_import import import_onnx
    from hwface.latency.kernels import map_to_onnx
    from hwface.targets import load_target

    network = load_network(name)
    fused, trace = fuse_traced(import_onnx(network.onnx_model), load_target("host").tvm_target())
    calls = map_to_onnx(fused, network.onnx_model, views=True, trace=trace)
    consumers: dict[str, list[OnnxNode]] = {}
    for n in network.onnx_model.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(OnnxNode(n.name, n.op_type, {}, tuple(n.input), tuple(n.output)))
    return ZooKernels(calls, consumers)


def _connected(own: list[OnnxNode]) -> bool:
    """Whether the nodes are one piece when joined by the tensors they pass each other."""
    made = {t: n.name for n in own for t in n.outputs}
    parent = {n.name: n.name for n in own}

    def root(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for n in own:
        for t in n.inputs:
            if t in made:
                parent[root(made[t])] = root(n.name)
    return len({root(n.name) for n in own}) == 1


def _convex(own: list[OnnxNode], consumers: dict[str, list[OnnxNode]]) -> bool:
    """Whether no path leaves the nodes and comes back (a fused kernel cannot wait on a node that waits on it)."""
    names = {n.name for n in own}
    reached: set[str] = set()  # outside tensors computed from the kernel's
    frontier = [t for n in own for t in n.outputs]
    while frontier:
        for n in consumers.get(frontier.pop(), ()):
            if n.name not in names and not reached.issuperset(n.outputs):
                reached.update(n.outputs)
                frontier.extend(n.outputs)
    return not any(reached & set(n.inputs) for n in own)


@pytest.mark.parametrize("name", swept_models())
def test_kernels_cover_a_few_neighbouring_modules(name):
    """Each kernel computes a handful of modules, in one convex and connected piece; no node twice."""
    z = zoo_kernels(name)
    owner: dict[str, int] = {}
    for c in z.calls:
        assert c.nodes, f"{name}: kernel {c.index} {c.kernel} maps to no ONNX node"
        assert len(c.modules) <= MAX_MODULES, f"{name}: kernel {c.index} {c.kernel} covers {c.modules}"
        assert _connected(c.nodes), f"{name}: kernel {c.index} {c.kernel} covers pieces {c.onnx_ops}"
        assert _convex(c.nodes, z.consumers), f"{name}: kernel {c.index} {c.kernel} is not convex: {c.modules}"
        for n in c.nodes:
            assert owner.setdefault(n.name, c.index) == c.index, \
                f"{name}: {n.name} is in kernels {owner[n.name]} and {c.index}"


@pytest.mark.parametrize("name", swept_models())
def test_conv_keys_agree_with_their_relax_convolutions(name):
    """Kernel, stride, padding, groups: the conv2d's own, consistent with its weight, shapes and ONNX node."""
    for c in zoo_kernels(name).calls:
        if "conv2d" not in c.relax_ops:
            continue
        a, k, where = c.op_attrs, layer_key(c), f"{name}: kernel {c.index} {c.kernel}"
        assert a is not None and a.op == "conv2d", where
        assert a.weight_shape == c.weight_shapes[0], where
        assert (k.kernel, k.stride, k.padding, k.dilation, k.groups) == (
            a.weight_shape[2:], a.stride, a.padding, a.dilation, a.groups), where
        (_, cin, h, w), (_, cout, oh, ow) = c.data_shapes[0], c.output_shape  # the conv reads the first data input
        assert cin == a.weight_shape[1] * a.groups, where
        pt, pl, pb, pr = a.padding
        conv_out = ((h + pt + pb - a.dilation[0] * (k.kernel[0] - 1) - 1) // a.stride[0] + 1,
                    (w + pl + pr - a.dilation[1] * (k.kernel[1] - 1) - 1) // a.stride[1] + 1)
        # the kernel's output is the conv's, or (an SE gate) the conv's broadcast over a feature map
        assert all(x in (y, 1) for x, y in zip(conv_out, (oh, ow))) and a.weight_shape[0] == cout, where
        (conv,) = [n for n in c.nodes if n.op_type == "Conv"]
        onnx = conv.attrs
        assert (tuple(onnx["kernel_shape"]), tuple(onnx.get("strides", (1, 1))), tuple(onnx.get("pads", (0,) * 4)),
                onnx.get("group", 1)) == (k.kernel, k.stride, k.padding, k.groups), where


def test_seesaw_share_head_keys_say_pointwise_and_gdconv():
    """Issue 13: the last two kernels were keyed as the stem (3x3, stride 2) and mapped to the whole network."""
    calls = [c for c in zoo_kernels("seesaw_share").calls if "conv2d" in c.relax_ops]
    pw, gd = calls[-3:-1]  # the last conv is the head's 1x1 linear embedding
    assert pw.kernel == "fused_conv2d34_add19_tir_sigmoid15_multiply15" and gd.kernel == "fused_conv2d35_add26"
    assert pw.modules == ["backbone.17.0", "backbone.17.2"] and gd.modules == ["head.0.0"]
    assert layer_key(pw).to_str() == ("op=pwconv|fused=conv2d+add+sigmoid+multiply|in=1x128x7x7|out=1x512x7x7|k=1x1|"
                                      "s=1x1|p=0x0x0x0|d=1x1|g=1|act=swish|dt=float32")
    assert layer_key(gd).to_str() == ("op=gdconv|fused=conv2d+add|in=1x512x7x7|out=1x512x1x1|k=7x7|s=1x1|p=0x0x0x0|"
                                      "d=1x1|g=512|act=-|dt=float32")
