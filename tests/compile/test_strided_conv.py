"""The phase-split strided convolution computes what TOPI's NCHW convolution computes."""

import numpy as np
import pytest

from hwface.compile.strided_conv import conv2d_nchw_phased


@pytest.mark.parametrize(
    "c_in, c_out, groups, size, kernel, strides, padding",
    [
        (3, 8, 1, (15, 16), 3, (2, 2), (1, 1, 1, 1)),  # image stem, odd height
        (8, 8, 8, (14, 14), 3, (2, 2), (1, 1, 1, 1)),  # depthwise
        (4, 6, 2, (9, 11), 5, (3, 2), (2, 1, 0, 2)),  # grouped, uneven strides and padding
        (5, 7, 1, (8, 8), 1, (2, 2), (0, 0, 0, 0)),  # strided pointwise
    ],
)
def test_matches_topi(c_in, c_out, groups, size, kernel, strides, padding):
    import tvm
    from tvm import te, topi

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, c_in, *size), dtype=np.float32)
    w = rng.standard_normal((c_out, c_in // groups, kernel, kernel), dtype=np.float32)
    data = te.placeholder(x.shape, name="data")
    weight = te.placeholder(w.shape, name="weight")
    outs = {
        "phased": conv2d_nchw_phased(data, weight, strides, padding, groups),
        "topi": topi.nn.conv(data, weight, strides, padding, (1, 1), groups, "NCHW", "OIHW"),
    }
    got = {}
    for name, out in outs.items():
        f = tvm.compile(te.create_prim_func([data, weight, out]), target="llvm")
        y = tvm.runtime.tensor(np.zeros([int(d) for d in out.shape], np.float32))
        f(tvm.runtime.tensor(x), tvm.runtime.tensor(w), y)
        got[name] = y.numpy()
    assert got["phased"].shape == got["topi"].shape
    np.testing.assert_allclose(got["phased"], got["topi"], rtol=1e-5, atol=1e-5)
    assert np.abs(got["topi"]).max() > 1  # a real convolution, not zeros


def test_only_strided_nchw_convs_are_phased():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.targets import load_target

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["a"], strides=[2, 2], pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["x", "w"], ["b"], strides=[1, 1], pads=[1, 1, 1, 1])],
        "two_convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4, 8, 8]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4, 16, 16])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    fused = fuse(import_onnx(model), load_target("host").tvm_target())
    scripts = [f.script() for gv, f in fused.functions.items() if gv.name_hint != "main"]
    phased = [s for s in scripts if 'T.sblock("phases")' in s]
    padded = [s for s in scripts if 'T.sblock("pad_temp")' in s]
    assert len(phased) == 1 and len(padded) == 1
    assert "T.int64(8), T.int64(8)" in phased[0]  # the stride-2 one
