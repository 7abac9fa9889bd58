"""The one Relax lowering used for building, tuning and per-kernel timing.

Tuning records only apply to the exact fused kernels they were measured on, so
the tuner, the builder and the profiler all call :func:`fuse` on the same
imported module: one fused PrimFunc = one kernel = one "layer".
"""

from __future__ import annotations

from hwface.compile.strided_conv import legalize_conv2d

# Bumped with every change that alters the kernels a network compiles to or the
# ones its artifact calls (0.2.0 fast sigmoid, 0.3.0 strided phases, 0.4.0 views);
# part of every latency row's pipeline fingerprint (hwface.latency.fingerprint).
LOWERING_VERSION = "0.4.0"


def fast_sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` with TOPI's vectorizable polynomial ``fast_exp``.

    TVM's own ``tir.sigmoid`` lowers to one scalar libm ``expf`` call per element
    (1.85 ns an element on the reference host, 8x the polynomial, see
    ``benchmarks/sigmoid_lowering.py``), which made every swish of the SeesawFaceNet
    and FR-MBConv networks cost more than its convolution. ``fast_exp`` stays within
    2e-7 relative error of ``expf`` on float32 and falls back to ``exp`` for other
    dtypes.
    """
    from tvm import te, tirx, topi

    e = topi.fast_exp(topi.negative(x))
    one = tirx.const(1, x.dtype)
    return te.compute(x.shape, lambda *i: one / (one + e(*i)), name="sigmoid", tag="elemwise")


def _legalize_sigmoid(bb, call):
    return bb.call_te(fast_sigmoid, call.args[0], primfunc_name_hint="tir_sigmoid")


def _legalize_silu(bb, call):
    from tvm import topi

    return bb.call_te(lambda x: topi.multiply(x, fast_sigmoid(x)), call.args[0], primfunc_name_hint="silu")


# Ops lowered differently from TVM's defaults (see :func:`fast_sigmoid` and
# :mod:`hwface.compile.strided_conv`).
LEGALIZE_OVERRIDES = {
    "relax.sigmoid": _legalize_sigmoid,
    "relax.nn.silu": _legalize_silu,
    "relax.nn.conv2d": legalize_conv2d,
}


def fuse(mod, target):
    """Legalize and fuse a freshly imported Relax module for ``target``.

    Runs DecomposeOpsForInference, LegalizeOps (with :data:`LEGALIZE_OVERRIDES`),
    AnnotateTIROpPattern, FoldConstant, FuseOps and FuseTIR (the sequence
    MetaSchedule's task extraction needs), under ``target``.
    """
    return fuse_traced(mod, target)[0]


def fuse_traced(mod, target):
    """:func:`fuse`, and what each kernel call of the result computes.

    Returns
    -------
    fused : tvm.IRModule
        The module :func:`fuse` returns (the same passes; the legalizers only
        record, see :func:`hwface.compile.op_attrs.recording_legalize_map`).
    trace : list of (str, OpAttrs or None)
        Per ``call_tir`` of ``fused["main"]``, in order: the kernel's name and the
        attributes of the convolution or pooling it computes, read from its Relax
        op before LegalizeOps (:func:`hwface.compile.op_attrs.trace_calls`); pass
        it to :func:`hwface.latency.kernels.kernel_calls`.
    """
    import tvm
    from tvm import relax

    from hwface.compile.op_attrs import recording_legalize_map, trace_calls

    legalize_map, recorded = recording_legalize_map(LEGALIZE_OVERRIDES)
    seq = tvm.transform.Sequential(
        [
            relax.transform.DecomposeOpsForInference(),
            relax.transform.CanonicalizeBindings(),
            relax.transform.LegalizeOps(customize_legalize_map=legalize_map),
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.FoldConstant(),
            relax.transform.FuseOps(),
        ]
    )
    with target, tvm.transform.PassContext(opt_level=3):
        grouped = seq(mod)
        fused = relax.transform.FuseTIR()(grouped)
    return fused, trace_calls(grouped, recorded)
