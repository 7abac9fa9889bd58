"""ONNX models with several outputs (a detector's score and box heads): compile, manifest, run --check, profile, tune."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SCORE_SHAPE = [1, 2, 8, 8]
BOX_SHAPE = [1, 4, 8, 8]


@pytest.fixture(scope="module")
def two_heads(tmp_path_factory) -> Path:
    """A small CNN with a score head (softmax over 2 classes) and a box head (4 offsets), opset 17."""
    import torch
    from torch import nn

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
            self.score = nn.Conv2d(16, 2, 1)
            self.box = nn.Conv2d(16, 4, 1)

        def forward(self, x):
            f = self.body(x)
            return self.score(f).softmax(1), self.box(f)

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("two_heads") / "two_heads.onnx"
    torch.onnx.export(TwoHeads().eval(), (torch.randn(1, 3, 32, 32),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["scores", "boxes"])
    return path


@pytest.fixture(scope="module")
def artifact(two_heads, tmp_path_factory) -> Path:
    from hwface.compile import compile_artifact

    out = tmp_path_factory.mktemp("two_heads_art") / "art"
    compile_artifact(out, target="host", onnx_path=two_heads)
    return out


@pytest.fixture(scope="module")
def loopback():
    """A private tracker + one host RPC server on 127.0.0.1 (module-scoped)."""
    from hwface.rpc.embedded import embedded_device

    with embedded_device() as ep:
        yield ep


def test_compile_lists_every_output_in_the_manifest(cli, two_heads, tmp_path):
    res = cli("compile", "--onnx", two_heads, "--untuned", "-o", tmp_path / "art", "--format", "json")
    assert res.code == 0, res.err
    m = json.loads(res.out)
    assert m["outputs"] == [{"name": "scores", "shape": SCORE_SHAPE, "dtype": "float32"},
                            {"name": "boxes", "shape": BOX_SHAPE, "dtype": "float32"}]
    assert m["output"] == {"shape": SCORE_SHAPE, "dtype": "float32"}  # the first, as older readers expect
    assert json.loads((tmp_path / "art" / "manifest.json").read_text())["outputs"] == m["outputs"]
    res = cli("compile", "--onnx", two_heads, "--untuned", "-o", tmp_path / "art2")
    assert res.code == 0 and "outputs scores [1, 2, 8, 8], boxes [1, 4, 8, 8]" in res.out


def test_run_checks_output_by_output(cli, artifact):
    res = cli("run", artifact, "--check", "--format", "json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert [(o["name"], o["shape"]) for o in report["outputs"]] == [("scores", SCORE_SHAPE), ("boxes", BOX_SHAPE)]
    assert report["output"] == report["outputs"][0]
    check = report["check"]
    assert check["reference"] == "onnxruntime" and check["match"]
    assert [c["name"] for c in check["outputs"]] == ["scores", "boxes"] and all(c["match"] for c in check["outputs"])
    res = cli("run", artifact, "--check")
    assert res.code == 0, res.err
    assert "output scores [1, 2, 8, 8]" in res.out and "output boxes [1, 4, 8, 8]" in res.out
    assert "check output scores vs onnxruntime" in res.out and "check output boxes vs onnxruntime" in res.out


def test_run_over_rpc_returns_every_output(cli, artifact, loopback):
    res = cli("run", artifact, "--tracker", loopback.tracker, "--key", loopback.key, "--check", "--format", "json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert [o["name"] for o in report["outputs"]] == ["scores", "boxes"] and report["check"]["match"]
    assert report["device"].startswith(f"{loopback.key}@127.0.0.1:")


def test_check_names_the_output_that_differs(artifact):
    from hwface.measure.local_run import run_local
    from hwface.workflows.run import check_outputs

    scores, boxes = run_local(artifact, timed=False).outputs
    check = check_outputs(artifact, None, [scores, boxes + 1e-2])
    assert not check["match"]
    assert [(c["name"], c["match"]) for c in check["outputs"]] == [("scores", True), ("boxes", False)]
    assert check["max_abs_diff"] == pytest.approx(1e-2, rel=1e-3)


def test_check_refuses_a_missing_output(artifact):
    from hwface.errors import HwfaceError
    from hwface.workflows.run import check_outputs

    with pytest.raises(HwfaceError, match="1 output"):
        check_outputs(artifact, None, [np.zeros(SCORE_SHAPE, "float32")])


def test_manifest_without_outputs_still_reads(artifact, tmp_path):
    """Artifacts compiled before the ``outputs`` field: one output, unnamed."""
    import shutil

    from hwface.compile.artifact import load_artifact

    old = tmp_path / "old"
    shutil.copytree(artifact, old)
    data = json.loads((old / "manifest.json").read_text())
    del data["outputs"]
    (old / "manifest.json").write_text(json.dumps(data))
    assert load_artifact(old).manifest.output_specs == [{"name": None, "shape": SCORE_SHAPE, "dtype": "float32"}]


def test_profile_times_both_heads(two_heads, loopback):
    from hwface.workflows.profile import profile_model

    r = profile_model(onnx_path=two_heads, target="host", tracker=loopback.tracker, key=loopback.key, repeat=2,
                      min_repeat_ms=1, store=False, guard=False)
    assert len(r.rows) == 5 and r.end_to_end.median_us > 0
    assert {row.output_shape for row in r.rows} >= {"1x2x8x8", "1x4x8x8"}


def test_tune_extracts_the_kernels_of_both_heads(two_heads):
    from hwface.compile.network import fused_module, load_network
    from hwface.targets import load_target
    from hwface.tune.logs import kernel_tasks

    spec = load_target("host")
    tasks = kernel_tasks(fused_module(load_network(onnx_path=two_heads), spec), spec)
    assert len(tasks) == 5 and all(int(t.weight) == 1 for t in tasks)
    assert any(t.task_name == "softmax" for t in tasks)  # the score head's last kernel
