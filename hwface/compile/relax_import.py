"""ONNX -> Relax, failing early and completely on unsupported operators."""

from __future__ import annotations

from hwface.export import OnnxModelError

# Ops the importer handles outside its converter map.
_DIRECTLY_HANDLED = {"Constant", "If"}


def unsupported_ops(model) -> list[str]:
    """Every op type of an ONNX graph that the Relax ONNX importer cannot convert, sorted."""
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    known = set(_get_convert_map()) | _DIRECTLY_HANDLED
    return sorted({n.op_type for n in model.graph.node} - known)


def import_onnx(model):
    """Import a static ONNX model into a Relax ``IRModule`` (weights bound as constants).

    Raises
    ------
    OnnxModelError
        Listing every unsupported op at once, or the importer's first error line.
    """
    missing = unsupported_ops(model)
    if missing:
        raise OnnxModelError(
            f"the TVM Relax ONNX importer does not support {len(missing)} op(s) of this model: {', '.join(missing)}"
        )
    from tvm.relax.frontend.onnx import from_onnx

    try:
        return from_onnx(model, keep_params_in_input=False)
    except Exception as exc:  # the importer raises TVMError/ValueError/KeyError alike
        first = str(exc).strip().splitlines()
        raise OnnxModelError(f"TVM cannot import this ONNX model: {first[-1] if first else type(exc).__name__}") from None
