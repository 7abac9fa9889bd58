"""Channel splits and concatenations compiled as views compute what the copy kernels compute."""

import numpy as np
import pytest

from hwface.compile.slice_views import channel_offsets


def test_offsets_of_aligned_channel_slices():
    # 4 and 12 channels of 8x8 float32: the second slice starts 4 * 64 * 4 bytes in
    assert channel_offsets((1, 16, 8, 8), [(1, 4, 8, 8), (1, 12, 8, 8)], 4) == [0, 1024]


@pytest.mark.parametrize(
    "whole, parts",
    [
        ((2, 16, 8, 8), [(2, 4, 8, 8), (2, 12, 8, 8)]),  # batch 2: a slice is two runs of memory
        ((1, 16, 8, 8), [(1, 4, 8, 8), (1, 8, 8, 8)]),  # parts do not tile the whole
        ((1, 16, 8, 8), [(1, 4, 8, 8), (1, 12, 4, 8)]),  # not a channel split
        ((1, 8, 3, 3), [(1, 2, 3, 3), (1, 6, 3, 3)]),  # second slice starts at 72 bytes
    ],
)
def test_slices_that_cannot_be_views(whole, parts):
    assert channel_offsets(whole, parts, 4) is None


def _grouped_graph(channels: int, size: int):
    """Split -> two 1x1 convs -> Concat, then the same again on the result.

    Outputs: the last concatenation, Relu of one of the first concatenation's
    inputs and the first concatenation itself (so that it stays a kernel of its
    own instead of fusing into the split that follows it).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    small = channels // 4
    big = channels - small
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal((c, c, 1, 1)).astype(np.float32), f"w{i}")
             for i, c in enumerate([small, big, big, small])]
    inits += [numpy_helper.from_array(np.array(s, np.int64), n)
              for n, s in [("first", [small, big]), ("second", [big, small])]]
    nodes = [
        helper.make_node("Split", ["x", "first"], ["p0", "p1"], axis=1),
        helper.make_node("Conv", ["p0", "w0"], ["a"]),
        helper.make_node("Conv", ["p1", "w1"], ["b"]),
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("Split", ["c", "second"], ["q0", "q1"], axis=1),
        helper.make_node("Conv", ["q0", "w2"], ["d"]),
        helper.make_node("Conv", ["q1", "w3"], ["e"]),
        helper.make_node("Concat", ["d", "e"], ["f"], axis=1),
        helper.make_node("Relu", ["a"], ["g"]),
    ]
    shape = [1, channels, size, size]
    graph = helper.make_graph(
        nodes, "uneven_groups", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("f", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("g", TensorProto.FLOAT, [1, small, size, size]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("channels, size, views", [(16, 8, "2 channel splits and 2 concatenations"),
                                                    (8, 3, "0 channel splits and 0 concatenations")])
def test_views_compute_what_copies_compute(channels, size, views):
    import tvm
    from tvm import relax

    from hwface.compile.build import build
    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.targets import load_target

    spec = load_target("host")
    fused = fuse(import_onnx(_grouped_graph(channels, size)), spec.tvm_target())
    said = []
    executables = {"views": build(fused, spec, progress=said.append),
                   "copies": tvm.compile(fused, target=spec.tvm_target())}
    assert said == [f"{views} run as views (no copy kernel)"]
    x = np.random.default_rng(2).standard_normal((1, channels, size, size)).astype(np.float32)
    outs = {}
    for name, exe in executables.items():
        vm = relax.VirtualMachine(exe, tvm.cpu())
        outs[name] = [t.numpy() for t in vm["main"](tvm.runtime.tensor(x))]
    for got, want in zip(outs["views"], outs["copies"]):
        np.testing.assert_array_equal(got, want)
    assert np.abs(outs["copies"][0]).max() > 1



def test_profile_leaves_out_the_kernels_that_became_views():
    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.latency.kernels import kernel_calls
    from hwface.targets import load_target

    fused = fuse(import_onnx(_grouped_graph(16, 8)), load_target("host").tvm_target())
    copies = [(c.kernel, c.runs_as_view) for c in kernel_calls(fused)]
    views = [(c.kernel, c.runs_as_view) for c in kernel_calls(fused, views=True)]
    assert [k for k, _ in copies] == [k for k, _ in views]
    assert not any(v for _, v in copies)
    assert {k for k, v in views if v} == {k for k, _ in views if k.startswith(("split", "concatenate"))}
    assert sum(v for _, v in views) == 4


def test_tuning_and_compile_skip_the_kernels_that_became_views():
    from tvm.s_tir import meta_schedule as ms

    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.targets import load_target
    from hwface.tune.logs import kernel_tasks

    spec = load_target("host")
    fused = fuse(import_onnx(_grouped_graph(16, 8)), spec.tvm_target())
    every = {t.task_name for t in ms.relax_integration.extract_tasks(fused, spec.tvm_target())}
    tuned = {t.task_name for t in kernel_tasks(fused, spec)}
    assert tuned < every
    assert every - tuned == {n for n in every if n.startswith(("split", "concatenate"))}
