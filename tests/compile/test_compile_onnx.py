"""`hwface compile --onnx` on real exported models with dynamic dims and shape subgraphs."""

from __future__ import annotations

import json

from tests.conftest import assert_one_line_error
from tests.test_export import dynamic_hw_mobilenetv2, nhwc_seesaw  # noqa: F401  (fixtures)


def test_compile_and_run_nhwc_constant_weights(cli, nhwc_seesaw, tmp_path):  # noqa: F811
    out = tmp_path / "art"
    res = cli("compile", "--onnx", nhwc_seesaw, "-o", out, "--format", "json")
    assert res.code == 0, res.err
    manifest = json.loads(res.out)
    assert manifest["input"] == {"name": "data", "shape": [1, 112, 112, 3], "dtype": "float32"}
    assert manifest["model"] is None and manifest["preprocessing"] is None
    res = cli("run", out, "--check", "--format", "json")
    report = json.loads(res.out)
    assert res.code == 0 and report["check"]["reference"] == "onnxruntime" and report["check"]["match"]


def test_compile_dynamic_hw_with_input_shape(cli, dynamic_hw_mobilenetv2, tmp_path):  # noqa: F811
    out = tmp_path / "art"
    res = cli("compile", "--onnx", dynamic_hw_mobilenetv2, "--input-shape", "1", "112", "96", "3", "-o", out)
    assert res.code == 0, res.err
    res = cli("run", out, "--check", "--format", "json")
    assert res.code == 0 and json.loads(res.out)["check"]["match"]


def test_wrong_rank_input_shape(cli_proc, nhwc_seesaw, tmp_path):  # noqa: F811
    res = cli_proc("compile", "--onnx", nhwc_seesaw, "--input-shape", "1", "112", "112", "-o", tmp_path / "a")
    assert_one_line_error(res, "--input-shape")
