"""Kernels of a fused module mapped to the network's layers (PyTorch module names) and MAdds."""

from __future__ import annotations

import onnx

from hwface.latency.kernels import kernel_madds, map_to_onnx, module_name, relax_ops_of


def test_module_names_from_torchscript_scopes():
    assert module_name("/stem/stem.0/Conv") == "stem.0"
    assert module_name("/backbone/backbone.10/body/body.0/body.0.0/Conv") == "backbone.10.body.0.0"
    assert module_name("/pw/Conv") == "pw"
    assert module_name("/Add") == ""


def test_relax_ops_of_fused_names():
    assert relax_ops_of("fused_conv2d12_add9_prelu5") == ("conv2d", "add", "prelu")
    assert relax_ops_of("fused_conv2d_add_tir_sigmoid_multiply") == ("conv2d", "add", "sigmoid", "multiply")
    assert relax_ops_of("fused_max_pool2d1") == ("max_pool2d",)


def test_tiny_network_kernels_cover_its_modules(tiny_onnx):
    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.targets import load_target

    model = onnx.load(str(tiny_onnx))
    calls = map_to_onnx(fuse(import_onnx(model), load_target("host").tvm_target()), model)
    assert [c.modules for c in calls] == [["stem.0", "stem.2"], ["block.0", "block.2"], ["pw"], [], ["head"]]
    assert [c.onnx_ops for c in calls][1] == ("Conv", "Relu", "Add")
    assert [c.runs_as_view for c in calls] == [False, False, False, True, False]
    assert kernel_madds(calls[0]) == 8 * 8 * 8 * 3 * 9
    assert kernel_madds(calls[4]) == 1024 * 10
    covered = {n.name for c in calls for n in c.nodes}
    assert covered == {n.name for n in model.graph.node}
