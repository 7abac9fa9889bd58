"""Named features of a kernel, computed in one place from its :class:`~hwface.latency.key.LayerKey`.

The predictor, its sidecar and every caller take features by name
(:data:`FEATURES` is the order a model was trained with and is saved beside
it), never by position. Sizes are in elements or bytes (float32: 4 bytes an
element), compute in multiply-adds; ``log_*`` features are ``log1p`` of the
plain ones, which is what latency follows over four orders of magnitude.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from hwface.latency.key import ACTIVATIONS, OP_KINDS, LayerKey

FEATURE_VERSION = 2  # bumped when a feature's meaning changes (2: a conv's MAdds at its own output size)
DTYPE_BYTES = {"float32": 4, "float16": 2, "int8": 1, "uint8": 1, "int32": 4}
FUSED_OPS = ("add", "multiply", "concatenate", "split", "transpose", "reshape", "mean", "strided_slice")
SIZE_FEATURES = ("in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "kh", "kw", "sh", "sw", "groups", "cin_per_group",
                 "cout_per_group", "n_inputs", "n_fused")
LOG_FEATURES = ("madds", "in_elems", "out_elems", "weight_elems", "bytes_read", "bytes_written", "weight_bytes")
ALIGN_FEATURES = ("out_c_mod8", "out_c_mod16", "out_w_mod8", "in_c_mod8")
RATIO_FEATURES = ("arith_intensity", "log_arith_intensity", "out_per_in")
FEATURES: tuple[str, ...] = (
    tuple(f"op_{k}" for k in OP_KINDS)
    + tuple(f"act_{a}" for a in ACTIVATIONS)
    + tuple(f"n_{o}" for o in FUSED_OPS)
    + SIZE_FEATURES
    + LOG_FEATURES + tuple(f"log_{n}" for n in LOG_FEATURES)
    + ALIGN_FEATURES + RATIO_FEATURES
)


def _dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of an NCHW shape; (features, 1, 1) of a 2-D one; (elements, 1, 1) otherwise."""
    if len(shape) == 4:
        return shape[1], shape[2], shape[3]
    if len(shape) == 2:
        return shape[1], 1, 1
    return int(np.prod(shape)) if shape else 1, 1, 1


def conv_output_size(key: LayerKey) -> tuple[int, int]:
    """(H, W) the convolution of a conv kernel produces, from its first input, padding, dilation and stride.

    Usually the kernel's output size; not when an epilogue broadcasts the
    convolution's result over a larger map (an SE excitation: a 1x1 conv on the
    squeezed 1x1 vector, then sigmoid and a multiply with the 7x7 feature map).
    """
    _, hin, win = _dims(key.input_shapes[0])
    kh, kw = key.kernel or (1, 1)
    pt, pl, pb, pr = key.padding or (0, 0, 0, 0)
    dh, dw = key.dilation or (1, 1)
    sh, sw = key.stride or (1, 1)
    return (hin + pt + pb - dh * (kh - 1) - 1) // sh + 1, (win + pl + pr - dw * (kw - 1) - 1) // sw + 1


def key_madds(key: LayerKey) -> int:
    """Multiply-adds of a kernel from its key: convolutions and matmuls only (the papers' convention)."""
    out_elems = int(np.prod(key.output_shape)) if key.output_shape else 0
    if key.op in ("conv", "dwconv", "gdconv", "pwconv", "gpwconv", "gconv") and key.kernel and key.input_shapes:
        cin = _dims(key.input_shapes[0])[0]
        cout = _dims(key.output_shape)[0]
        ho, wo = conv_output_size(key) if len(key.input_shapes[0]) == 4 else _dims(key.output_shape)[1:]
        return cout * ho * wo * (cin // (key.groups or 1)) * key.kernel[0] * key.kernel[1]
    if key.op in ("fc", "matmul") and key.input_shapes:
        return out_elems * key.input_shapes[0][-1]
    return 0


def _weight_elems(key: LayerKey, cin: int, cout: int) -> int:
    """Elements of the constants a kernel reads: conv/fc weights and one bias/slope vector per fused op."""
    per_channel = sum(1 for op in key.fused if op in ("add", "prelu", "multiply")) * cout
    if key.op in ("conv", "dwconv", "gdconv", "pwconv", "gpwconv", "gconv") and key.kernel:
        return cout * (cin // (key.groups or 1)) * key.kernel[0] * key.kernel[1] + per_channel
    if key.op == "fc" and key.input_shapes:
        return key.input_shapes[0][-1] * cout + per_channel
    return 0


def weight_bytes(key: LayerKey) -> int:
    """Bytes of the constants a kernel reads (weights and per-channel vectors, see :func:`_weight_elems`)."""
    cin = _dims(key.input_shapes[0])[0] if key.input_shapes else 0
    return DTYPE_BYTES.get(key.dtype, 4) * _weight_elems(key, cin, _dims(key.output_shape)[0])


def features(key: LayerKey) -> dict[str, float]:
    """All :data:`FEATURES` of one kernel, by name."""
    cin, hin, win = _dims(key.input_shapes[0]) if key.input_shapes else (0, 0, 0)
    cout, hout, wout = _dims(key.output_shape)
    kh, kw = key.kernel or (1, 1)
    sh, sw = key.stride or (1, 1)
    groups = key.groups or 1
    nbytes = DTYPE_BYTES.get(key.dtype, 4)
    in_elems = sum(int(np.prod(s)) for s in key.input_shapes)
    out_elems = int(np.prod(key.output_shape)) if key.output_shape else 0
    weight_elems = _weight_elems(key, cin, cout)
    madds = key_madds(key)
    plain = {
        "madds": madds, "in_elems": in_elems, "out_elems": out_elems, "weight_elems": weight_elems,
        "bytes_read": nbytes * (in_elems + weight_elems), "bytes_written": nbytes * out_elems,
        "weight_bytes": nbytes * weight_elems,
    }
    moved = plain["bytes_read"] + plain["bytes_written"]
    f: dict[str, float] = {f"op_{k}": float(key.op == k) for k in OP_KINDS}
    f.update({f"act_{a}": float(key.activation == a) for a in ACTIVATIONS})
    f.update({f"n_{o}": float(sum(1 for op in key.fused if op == o)) for o in FUSED_OPS})
    f.update({"in_c": cin, "in_h": hin, "in_w": win, "out_c": cout, "out_h": hout, "out_w": wout, "kh": kh, "kw": kw,
              "sh": sh, "sw": sw, "groups": groups, "cin_per_group": cin / groups, "cout_per_group": cout / groups,
              "n_inputs": len(key.input_shapes), "n_fused": len(key.fused)})
    f.update({k: float(v) for k, v in plain.items()})
    f.update({f"log_{k}": math.log1p(v) for k, v in plain.items()})
    f.update({"out_c_mod8": cout % 8, "out_c_mod16": cout % 16, "out_w_mod8": wout % 8, "in_c_mod8": cin % 8})
    intensity = madds / moved if moved else 0.0
    f.update({"arith_intensity": intensity, "log_arith_intensity": math.log1p(intensity),
              "out_per_in": out_elems / in_elems if in_elems else 0.0})
    return {name: float(f[name]) for name in FEATURES}


def feature_matrix(keys: Iterable[LayerKey], names: tuple[str, ...] = FEATURES) -> np.ndarray:
    """Features of many keys as a float32 matrix, columns in the order of ``names``."""
    rows = [features(k) for k in keys]
    return np.array([[r[n] for n in names] for r in rows], dtype=np.float32).reshape(len(rows), len(names))
