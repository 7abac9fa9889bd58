"""A network ready for TVM: a zoo model or an ONNX file, as one static ONNX graph.

Compiling, tuning and profiling all start here and fuse with
:func:`hwface.compile.pipeline.fuse`, so that the kernels they see are the same.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hwface.errors import HwfaceError
from hwface.export import OnnxInput


@dataclass(frozen=True)
class Network:
    """A static ONNX graph and where it came from.

    ``zoo_model`` is the zoo name, or None for an ONNX file made elsewhere.
    """

    name: str
    onnx_model: object
    input: OnnxInput
    zoo_model: str | None


def load_network(
    model: str | None = None,
    onnx_path: str | Path | None = None,
    input_size: tuple[int, int] | None = None,
    input_shape: tuple[int, ...] | None = None,
    onnx_out: str | Path | None = None,
) -> Network:
    """Export a zoo network (with parity check) or clean an ONNX file, and keep the ONNX at ``onnx_out``."""
    import onnx

    from hwface.export import export_model, load_foreign

    if (model is None) == (onnx_path is None):
        raise HwfaceError("give exactly one of a zoo model or an ONNX file")
    if model is not None:
        if onnx_out is None:
            onnx_out = Path(tempfile.mkdtemp(prefix="hwface-")) / "model.onnx"
        exported = export_model(model, onnx_out, input_size=input_size)
        return Network(model, onnx.load(str(onnx_out)), exported.input, model)
    onnx_model, inp = load_foreign(onnx_path, input_shape)
    if onnx_out is not None:
        onnx.save(onnx_model, str(onnx_out))
    return Network(Path(onnx_path).stem, onnx_model, inp, None)


def fused_module(network: Network, spec):
    """Import ``network`` into Relax and fuse it for ``spec`` (a TargetSpec)."""
    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx

    return fuse(import_onnx(network.onnx_model), spec.tvm_target())


def fused_module_traced(network: Network, spec):
    """:func:`fused_module` and its op trace (:func:`hwface.compile.pipeline.fuse_traced`), for kernel keys."""
    from hwface.compile.pipeline import fuse_traced
    from hwface.compile.relax_import import import_onnx

    return fuse_traced(import_onnx(network.onnx_model), spec.tvm_target())
