"""PyTorch -> ONNX export with checks, and clean-up of ONNX files from elsewhere.

Zoo networks are exported with the TorchScript-based exporter (``dynamo=False``):
it folds BatchNorm into the convolutions in eval mode, emits SiLU as
Sigmoid + Mul (the Relax importer has no Swish op) and needs no extra packages.

ONNX files made elsewhere often carry a dynamic batch dimension, weights in
Constant nodes and Shape/Gather/Concat subgraphs that compute static shapes at
run time. :func:`make_static` fixes the input shapes and :func:`simplify` folds
those subgraphs with onnxslim (shape inference + constant folding), so that the
Relax importer sees a static graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwface.errors import HwfaceError

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "embedding"


class OnnxModelError(HwfaceError):
    """An ONNX file that cannot be read, made static or imported."""


@dataclass(frozen=True)
class OnnxInput:
    """Name, static shape and dtype of a graph input."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class ExportResult:
    """An exported zoo network.

    ``max_abs_diff`` is the largest absolute difference between the PyTorch and
    the onnxruntime embeddings for one random input.
    """

    path: Path
    input: OnnxInput
    output_shape: tuple[int, ...]
    max_abs_diff: float


def export_model(
    name: str,
    path: str | Path,
    input_size: tuple[int, int] | None = None,
    seed: int = 0,
) -> ExportResult:
    """Export a zoo network to ONNX, run ``onnx.checker`` and a parity check with onnxruntime.

    Parameters
    ----------
    name : str
        Zoo name.
    path : path
        Output ``.onnx`` file.
    input_size : (int, int), optional
        Input (H, W) in pixels; the paper's by default.
    seed : int
        Seed of the random weights' input used for the parity check.
    """
    from hwface.models import create_model, get_model_info
    from hwface.models.registry import check_input_size

    info = get_model_info(name)
    size = check_input_size(info, input_size or info.input_size)
    return export_module(create_model(name, input_size=size), size, path, seed)


def export_module(model, input_size: tuple[int, int], path: str | Path, seed: int = 0) -> ExportResult:
    """Export a built network (eval mode) to ONNX as the zoo is exported, check it and compare with onnxruntime.

    Parameters
    ----------
    model : torch.nn.Module
    input_size : (int, int)
        Input (H, W) in pixels.
    path : path
        Output ``.onnx`` file (parent folders are created).
    seed : int
        Seed of the parity-check input.
    """
    import onnx
    import torch

    x = torch.from_numpy(example_input((1, 3, *input_size), seed))
    path = Path(path)
    writable_parent(path)
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


def writable_parent(path: str | Path) -> Path:
    """Create the folder of an output file; returns ``path``.

    Raises
    ------
    HwfaceError
        When the folder cannot be made (a file stands in the way, no permission).
    """
    path = Path(path)
    in_the_way = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        raise HwfaceError(f"cannot write {path}: {in_the_way} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HwfaceError(f"cannot write {path}: {exc.strerror or exc} ({exc.filename or path.parent})") from None
    if path.is_dir():
        raise HwfaceError(f"cannot write {path}: it is a directory")
    return path


def parity_tolerance(reference: np.ndarray) -> float:
    """Largest max-abs difference accepted between two runtimes' embeddings: 1e-4, or 1e-4 of the
    reference's L2 norm when that is larger."""
    return max(1e-4, 1e-4 * float(np.linalg.norm(reference)))


def outputs_match(got: np.ndarray, reference: np.ndarray) -> bool:
    """True when ``got`` is within :func:`parity_tolerance` of ``reference`` (max abs difference)."""
    return float(np.abs(np.asarray(got) - np.asarray(reference)).max()) <= parity_tolerance(reference)


def example_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A reproducible face-crop-like input: uniform pixels in [0, 255] normalised as (x - 127.5) / 128."""
    rng = np.random.default_rng(seed)
    return ((rng.uniform(0, 255, size=shape) - 127.5) / 128.0).astype("float32")


def run_onnxruntime(path: str | Path, x: np.ndarray, threads: int | None = None) -> np.ndarray:
    """First output of an ONNX model run by onnxruntime on the CPU for input ``x``."""
    return run_onnxruntime_outputs(path, x, threads)[0]


def run_onnxruntime_outputs(path: str | Path, x: np.ndarray, threads: int | None = None) -> list[np.ndarray]:
    """Every output of an ONNX model, in the graph's order, run by onnxruntime on the CPU for input ``x``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return [np.asarray(y) for y in sess.run(None, {sess.get_inputs()[0].name: x})]


def graph_inputs(model) -> list[OnnxInput]:
    """The real inputs of an ONNX graph (initializers excluded); dynamic dims are -1."""
    init = {i.name for i in model.graph.initializer}
    out = []
    for i in model.graph.input:
        if i.name in init:
            continue
        t = i.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in t.shape.dim)
        out.append(OnnxInput(i.name, dims, _dtype_name(t.elem_type)))
    return out


def _dtype_name(elem_type: int) -> str:
    from onnx import helper

    return str(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)))


def make_static(model, input_shape: tuple[int, ...] | None = None):
    """Fix the input shape of a single-input ONNX model (in place), and return it.

    ``input_shape`` replaces the file's shape; without it, every dynamic dim is set to 1.
    Output and intermediate shapes are cleared so that shape inference recomputes them.
    """
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise OnnxModelError(f"expected a model with one input, found {len(inputs)}: {[i.name for i in inputs]}")
    declared = inputs[0].shape
    if input_shape is not None:
        if len(input_shape) != len(declared):
            raise OnnxModelError(
                f"--input-shape has {len(input_shape)} dims but input {inputs[0].name!r} has {len(declared)} ({_fmt(declared)})"
            )
        for want, have in zip(input_shape, declared):
            if have > 0 and want != have:
                raise OnnxModelError(
                    f"--input-shape {_fmt(input_shape)} contradicts the static shape {_fmt(declared)} of input {inputs[0].name!r}"
                )
        shape = tuple(int(d) for d in input_shape)
    else:
        shape = tuple(d if d > 0 else 1 for d in declared)
    graph_input = next(i for i in model.graph.input if i.name == inputs[0].name)
    dims = graph_input.type.tensor_type.shape.dim
    for d, v in zip(dims, shape):
        d.Clear()
        d.dim_value = v
    for o in model.graph.output:
        for d in o.type.tensor_type.shape.dim:
            d.Clear()
    del model.graph.value_info[:]
    return model


def _fmt(shape) -> str:
    return "x".join("?" if d < 0 else str(d) for d in shape)


def simplify(model):
    """Fold constants and shape subgraphs of a static ONNX model with onnxslim; returns a new model."""
    import onnx
    import onnxslim

    try:
        slim = onnxslim.slim(model, skip_fusion_patterns=None, no_shape_infer=False)
    except Exception as exc:  # onnxslim raises various errors for malformed graphs
        raise OnnxModelError(f"cannot simplify the ONNX graph: {str(exc).splitlines()[0]}") from None
    onnx.checker.check_model(slim)
    return slim


def load_foreign(path: str | Path, input_shape: tuple[int, ...] | None = None):
    """Read an ONNX file from elsewhere and make it static and folded, ready for import.

    Returns
    -------
    (onnx.ModelProto, OnnxInput)
        The cleaned model and its (now static) input.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"no ONNX file at {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf decode errors have several types
        raise OnnxModelError(f"{path} is not a readable ONNX file: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not model.graph.node:
        raise OnnxModelError(f"{path} holds no ONNX graph (an empty or truncated file?)")
    model = simplify(make_static(model, input_shape))
    (inp,) = graph_inputs(model)
    return model, inp
