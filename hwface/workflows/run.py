"""Checking an artifact's outputs against a reference runtime, output by output."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwface.errors import HwfaceError


def reference_outputs(artifact, x: np.ndarray) -> tuple[list[np.ndarray], str]:
    """The outputs an artifact should give for ``x``, and who computed them.

    PyTorch for a zoo network (after checking that the artifact's ``model.onnx``
    still agrees with this hwface's definition of it), onnxruntime on the
    artifact's ``model.onnx`` for an ONNX file made elsewhere.

    Raises
    ------
    HwfaceError
        A zoo artifact built from another definition of its network.
    """
    from hwface.export import outputs_match, run_onnxruntime_outputs

    onnx_ref = run_onnxruntime_outputs(artifact.onnx_path, x)
    if not artifact.manifest.model:
        return onnx_ref, "onnxruntime"
    import torch

    from hwface.models import create_model

    size = tuple(artifact.manifest.input["shape"][2:])
    with torch.no_grad():
        ref = create_model(artifact.manifest.model, input_size=size)(torch.from_numpy(x)).numpy()
    if not outputs_match(onnx_ref[0], ref):
        raise HwfaceError(
            f"{artifact.directory} was built from another definition of {artifact.manifest.model} than this "
            "hwface's (its model.onnx disagrees with PyTorch): recompile it"
        )
    return [ref], "PyTorch"


def compare_outputs(got: Sequence[np.ndarray], reference: Sequence[np.ndarray],
                    names: Sequence[str | None]) -> list[dict[str, Any]]:
    """Per output: its name, max abs difference, tolerance (:func:`hwface.export.parity_tolerance`) and match.

    Raises
    ------
    HwfaceError
        When the counts or the shapes of the outputs differ.
    """
    from hwface.export import parity_tolerance

    if len(got) != len(reference):
        raise HwfaceError(f"the artifact gave {len(got)} output(s), the reference {len(reference)}")
    rows = []
    for i, (y, ref) in enumerate(zip(got, reference)):
        name = names[i] if i < len(names) else None
        y, ref = np.asarray(y), np.asarray(ref)
        if y.shape != ref.shape:
            raise HwfaceError(f"output {i} ({name}) has shape {list(y.shape)}, the reference {list(ref.shape)}")
        diff = float(np.abs(y.astype("float64") - ref.astype("float64")).max()) if y.size else 0.0
        tol = parity_tolerance(ref) if ref.size else 0.0
        rows.append({"name": name, "max_abs_diff": diff, "tolerance": tol, "match": diff <= tol})
    return rows


def check_outputs(artifact_dir: str | Path, input_path: str | Path | None,
                  outputs: Sequence[np.ndarray]) -> dict[str, Any]:
    """Compare an artifact's outputs for its input with PyTorch (zoo networks) or onnxruntime (ONNX files).

    Parameters
    ----------
    artifact_dir : path
        Made by ``hwface compile``.
    input_path : path, optional
        The ``.npy`` input the outputs were computed for (default: the example input).
    outputs : sequence of numpy.ndarray
        The artifact's outputs, in the manifest's order.

    Returns
    -------
    dict
        ``reference``, ``outputs`` (per output, see :func:`compare_outputs`),
        and over all outputs ``max_abs_diff``, ``tolerance`` (of the output
        with the largest difference) and ``match`` (every output matches).
    """
    from hwface.compile.artifact import load_artifact
    from hwface.measure.local_run import load_input

    artifact = load_artifact(artifact_dir)
    x = load_input(artifact, input_path)
    reference, who = reference_outputs(artifact, x)
    names = [o.get("name") for o in artifact.manifest.output_specs]
    rows = compare_outputs(outputs, reference, names)
    worst = max(rows, key=lambda r: r["max_abs_diff"] - r["tolerance"])
    return {"reference": who, "max_abs_diff": max(r["max_abs_diff"] for r in rows),
            "tolerance": worst["tolerance"], "match": all(r["match"] for r in rows), "outputs": rows}
