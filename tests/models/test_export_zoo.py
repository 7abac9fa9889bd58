"""ONNX export of every zoo network: onnx.checker and onnxruntime parity.

`make test` exports all 28; the networks outside the sweep's subset (tests/zoo_sweep.py) are
marked slow, so `make test-fast` exports one of each family and building block."""

from __future__ import annotations

import numpy as np
import pytest

from hwface.export import export_model
from hwface.models import get_model_info, list_models
from tests.zoo_sweep import SUBSET


@pytest.mark.parametrize("name", [n if n in SUBSET else pytest.param(n, marks=pytest.mark.slow) for n in list_models()])
def test_export_passes_checker_and_matches_pytorch(name, tmp_path):
    info = get_model_info(name)
    res = export_model(name, tmp_path / f"{name}.onnx")
    assert res.path.stat().st_size > 0
    assert res.output_shape == (1, info.embedding_dim)
    assert res.input.shape == (1, 3, *info.input_size)
    assert res.max_abs_diff <= 1e-3, res.max_abs_diff
    assert np.isfinite(res.max_abs_diff)
