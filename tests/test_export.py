"""ONNX from elsewhere: dynamic dims, NHWC input, weights in Constant nodes, shape subgraphs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from torch import nn

from hwface.compile.relax_import import import_onnx, unsupported_ops
from hwface.export import OnnxModelError, graph_inputs, load_foreign, run_onnxruntime
from hwface.models import create_model


class NHWCDeployWrapper(nn.Module):
    """How face models ship in the wild: NHWC input, flatten by the dynamic batch size."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        y = self.net.head(self.net.backbone(x.permute(0, 3, 1, 2)))
        return y.reshape(y.shape[0], -1)


def weights_to_constant_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Move every initializer into a Constant node, as some converters emit."""
    consts = [helper.make_node("Constant", [], [i.name], value=i) for i in model.graph.initializer]
    nodes = consts + list(model.graph.node)
    del model.graph.initializer[:]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


@pytest.fixture(scope="module")
def nhwc_seesaw(tmp_path_factory):
    """seesaw_share behind an NHWC wrapper, dynamic batch, weights in Constant nodes (opset 13)."""
    path = tmp_path_factory.mktemp("onnx") / "seesaw_nhwc.onnx"
    torch.onnx.export(NHWCDeployWrapper(create_model("seesaw_share")).eval(), (torch.randn(1, 112, 112, 3),),
                      str(path), dynamo=False, opset_version=13, input_names=["data"], output_names=["fc1"],
                      dynamic_axes={"data": {0: "batch"}, "fc1": {0: "batch"}}, do_constant_folding=False)
    onnx.save(weights_to_constant_nodes(onnx.load(str(path))), str(path))
    return path


@pytest.fixture(scope="module")
def dynamic_hw_mobilenetv2(tmp_path_factory):
    """mobilenetv2_face with dynamic batch, height and width (GAPool head takes any size)."""
    path = tmp_path_factory.mktemp("onnx") / "mnv2_dyn.onnx"
    net = create_model("mobilenetv2_face")
    torch.onnx.export(NHWCDeployWrapper(net).eval(), (torch.randn(1, 112, 112, 3),), str(path), dynamo=False,
                      opset_version=17, input_names=["img"], output_names=["emb"],
                      dynamic_axes={"img": {0: "n", 1: "h", 2: "w"}, "emb": {0: "n"}})
    return path


def test_source_models_are_dynamic_with_shape_subgraphs(nhwc_seesaw, dynamic_hw_mobilenetv2):
    for path in (nhwc_seesaw, dynamic_hw_mobilenetv2):
        m = onnx.load(str(path))
        assert -1 in graph_inputs(m)[0].shape
        ops = Counter(n.op_type for n in m.graph.node)
        assert ops["Shape"] >= 1 and ops["Reshape"] >= 1, ops
    assert Counter(n.op_type for n in onnx.load(str(nhwc_seesaw)).graph.node)["Constant"] > 100


def test_load_foreign_makes_static_and_folds(nhwc_seesaw):
    model, inp = load_foreign(nhwc_seesaw)
    assert inp.shape == (1, 112, 112, 3) and inp.name == "data"
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["Shape"] == 0 and ops["Constant"] == 0 and ops["Gather"] == 0, ops
    x = np.random.default_rng(0).standard_normal((1, 112, 112, 3)).astype("float32")
    np.testing.assert_allclose(run_onnxruntime(nhwc_seesaw, x), _ort(model, x), atol=1e-4)


def test_input_shape_replaces_dynamic_dims(dynamic_hw_mobilenetv2):
    model, inp = load_foreign(dynamic_hw_mobilenetv2, input_shape=(1, 96, 80, 3))
    assert inp.shape == (1, 96, 80, 3)
    assert import_onnx(model) is not None


def test_input_shape_contradicting_static_dims(nhwc_seesaw):
    with pytest.raises(OnnxModelError, match="contradicts"):
        load_foreign(nhwc_seesaw, input_shape=(1, 3, 112, 112))


def test_unsupported_ops_listed_at_once(tmp_path):
    class TrackHead(nn.Module):
        """A face-track head with a CELU and a GRU over frames: two ops the importer lacks."""

        def __init__(self):
            super().__init__()
            self.act = nn.CELU()
            self.gru = nn.GRU(128, 32, batch_first=True)

        def forward(self, emb):
            return self.gru(self.act(emb).unsqueeze(1))[0]

    net = nn.Sequential(create_model("mobilefacenet"), TrackHead()).eval()
    path = tmp_path / "track.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 112, 112),), str(path), dynamo=False, opset_version=17)
    model, _ = load_foreign(path)
    assert unsupported_ops(model) == ["Celu", "GRU"]
    with pytest.raises(OnnxModelError, match="Celu, GRU"):
        import_onnx(model)


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(OnnxModelError):
        load_foreign(bad)
    with pytest.raises(OnnxModelError, match="no ONNX file"):
        load_foreign(tmp_path / "missing.onnx")


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]
