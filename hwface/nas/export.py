"""Export an arch spec's network to ONNX exactly as :func:`hwface.export.export_model` exports a zoo network.

:func:`hwface.export.export_model` takes a zoo name only; this is the same
sequence (TorchScript exporter, :data:`~hwface.export.OPSET`, the same input and
output names, constant folding, ``onnx.checker``, a parity check with
onnxruntime on :func:`~hwface.export.example_input`) for a built spec, so a spec
meets the Relax importer in the same form as the zoo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwface.export import INPUT_NAME, OPSET, OUTPUT_NAME, ExportResult, OnnxInput, example_input, run_onnxruntime
from hwface.nas.spec import ArchSpec


def export_spec(spec: ArchSpec, path: str | Path, seed: int = 0) -> ExportResult:
    """Build ``spec`` (seeded, BN-calibrated), export it to ONNX, check it and compare with onnxruntime.

    Parameters
    ----------
    spec : ArchSpec
    path : path
        Output ``.onnx`` file (parent folders are created).
    seed : int
        Seed of the weights and of the parity-check input.

    Returns
    -------
    ExportResult
        ``max_abs_diff`` is the largest |PyTorch - onnxruntime| over the embedding.
    """
    import onnx
    import torch

    from hwface.nas.build import build

    model = build(spec, seed=seed)
    x = torch.from_numpy(example_input((1, 3, *spec.input_size), seed))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        expected = model(x).numpy()
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True,
        )
    onnx.checker.check_model(str(path), full_check=True)
    got = run_onnxruntime(path, x.numpy())
    return ExportResult(
        path=path,
        input=OnnxInput(INPUT_NAME, tuple(x.shape), "float32"),
        output_shape=tuple(expected.shape),
        max_abs_diff=float(np.abs(got - expected).max()),
    )
