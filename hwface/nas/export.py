"""Export an arch spec's network to ONNX with the zoo's own exporter (:func:`hwface.export.export_module`).

So a spec meets the Relax importer in the same form as a zoo network.
"""

from __future__ import annotations

from pathlib import Path

from hwface.export import ExportResult, export_module
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
    from hwface.nas.build import build

    return export_module(build(spec, seed=seed), spec.input_size, path, seed)
