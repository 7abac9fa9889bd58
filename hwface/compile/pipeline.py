"""The one Relax lowering used for building, tuning and per-kernel timing.

Tuning records only apply to the exact fused kernels they were measured on, so
the tuner, the builder and the profiler all call :func:`fuse` on the same
imported module: one fused PrimFunc = one kernel = one "layer".
"""

from __future__ import annotations


def fuse(mod, target):
    """Legalize and fuse a freshly imported Relax module for ``target``.

    Runs DecomposeOpsForInference, LegalizeOps, AnnotateTIROpPattern,
    FoldConstant, FuseOps and FuseTIR (the sequence MetaSchedule's task
    extraction needs), under ``target``.
    """
    import tvm
    from tvm import relax

    seq = tvm.transform.Sequential(
        [
            relax.transform.DecomposeOpsForInference(),
            relax.transform.CanonicalizeBindings(),
            relax.transform.LegalizeOps(),
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.FoldConstant(),
            relax.transform.FuseOps(),
            relax.transform.FuseTIR(),
        ]
    )
    with target, tvm.transform.PassContext(opt_level=3):
        return seq(mod)


def kernel_names(mod) -> list[str]:
    """Names of the TIR kernels (PrimFuncs) of a fused module, sorted."""
    import tvm

    return sorted(gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc))
