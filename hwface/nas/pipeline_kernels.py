"""The kernels a network runs on a target, through the real pipeline (export -> Relax -> fuse -> keys).

The slow, exact answer (seconds a network): what the kernel planner
(:mod:`hwface.nas.plan`) is held to, and what a lookup falls back on for an ONNX
file or a zoo network outside the spec grammar.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hwface.nas.spec import ArchSpec


def pipeline_kernels(spec, model: str | None = None, arch: ArchSpec | None = None,
                     onnx: str | Path | None = None) -> tuple[str, list[tuple[str, int]]]:
    """The distinct kernels ``(key string, calls)`` a network runs on target ``spec``, and the network's name.

    Parameters
    ----------
    spec : TargetSpec
    model, arch, onnx
        Exactly one: a zoo name, an arch spec, or an ONNX file.
    """
    from hwface.compile.network import fused_module_traced, load_network
    from hwface.compile.slice_views import uses_views
    from hwface.latency.kernels import map_to_onnx
    from hwface.latency.key import layer_key

    from hwface.nas.export import export_spec

    with tempfile.TemporaryDirectory(prefix="hwface-kernels-") as work:  # the ONNX is read into memory
        if arch is not None:
            network = load_network(onnx_path=export_spec(arch, Path(work) / "arch.onnx").path)
        elif model is not None:
            network = load_network(model, onnx_out=Path(work) / "model.onnx")
        else:
            network = load_network(onnx_path=onnx)
    fused, trace = fused_module_traced(network, spec)
    calls = [c for c in map_to_onnx(fused, network.onnx_model, views=uses_views(spec.tvm_target()), trace=trace)
             if not c.runs_as_view]
    counts: dict[str, int] = {}
    for c in calls:
        k = layer_key(c).to_str()
        counts[k] = counts.get(k, 0) + 1
    return ("arch" if arch is not None else network.name), list(counts.items())
