"""Build a fused Relax module for a target and link it into a ``.so`` the device loads as is."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from hwface.compile.slice_views import alias_channel_slices, kernel_called, uses_views
from hwface.errors import HwfaceError
from hwface.targets import NDK, TargetSpec


def relax_pipeline(target, progress: Callable[[str], None] | None = None):
    """The Relax lowering :func:`build` compiles with.

    TVM's default pipeline for ``target``; on CPU targets (``llvm``), channel
    splits and concatenations become views between the dataflow lowering and the
    memory planning (:mod:`hwface.compile.slice_views`). ``progress(message)``
    is told how many.
    """
    import tvm
    from tvm import relax
    from tvm.relax.backend.cpu_generic import pipeline as cpu

    if not uses_views(target):
        return relax.get_default_pipeline(target)

    @tvm.transform.module_pass(opt_level=0, name="HwfaceCPUPipeline")
    def _pipeline(mod, _ctx):
        with target:
            lower = cpu.library_dispatch_passes(target) + cpu.legalize_passes(target)
            mod = tvm.transform.Sequential(lower + cpu.dataflow_lower_passes(target))(mod)
            mod, stats = alias_channel_slices(mod)
            if progress is not None:
                progress(
                    f"{stats.splits} channel splits and {stats.concatenations} concatenations "
                    "run as views (no copy kernel)"
                )
            return tvm.transform.Sequential(cpu.finalize_passes(target))(mod)

    return _pipeline


def kernels_left(fused, views: bool) -> set[str]:
    """Names of the kernels the artifact of a fused module still calls.

    Pure reshapes run as views in the VM (``RewriteDataflowReshape``), and with
    ``views`` (CPU targets, see :func:`relax_pipeline`) so do aligned channel
    splits and concatenations. Per name: a kernel that stays a copy in any of
    its calls is kept.
    """
    import tvm
    from tvm import relax

    mod = tvm.transform.Sequential([
        relax.transform.RewriteDataflowReshape(),
        relax.transform.ToNonDataflow(),
        relax.transform.RemovePurityChecking(),
        relax.transform.CallTIRRewrite(),
    ])(fused)
    if views:
        mod, _ = alias_channel_slices(mod)
    names = {kernel_called(mod, b.value) for block in mod["main"].body.blocks for b in block.bindings}
    return names - {None}


def build(mod, spec: TargetSpec, database=None, progress: Callable[[str], None] | None = None):
    """Compile a fused Relax module (see :func:`hwface.compile.pipeline.fuse`) for ``spec``.

    Parameters
    ----------
    mod : tvm.IRModule
        Fused module.
    spec : TargetSpec
    database : meta_schedule.database.Database, optional
        Tuning records; applied with ``MetaScheduleApplyDatabase`` on the same
        fused module. Kernels without a record keep TVM's default schedule.
    progress : callable, optional
        ``progress(message)``, see :func:`relax_pipeline`.

    Returns
    -------
    tvm.runtime.Executable
    """
    import tvm
    from tvm import relax

    target = spec.tvm_target()
    if database is not None:
        with target, database, tvm.transform.PassContext(opt_level=3):
            mod = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)
    return tvm.compile(mod, target=target, relax_pipeline=relax_pipeline(target, progress))


class LinkError(HwfaceError):
    """The compiler that links a ``.so`` for the device failed."""


def linker_error_line(message: str) -> str | None:
    """The compiler's own first error line in a TVM link failure message, else its first line; None if empty.

    TVM's ``cc`` / ``ndk`` helpers raise ``RuntimeError("Compilation error:\n<output>[\nCommand line: ...]")``.
    """
    lines = [line.strip() for line in message.splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Compilation error:", "Command line:"))]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [None])[0]


def export_so(executable, path: str | Path, spec: TargetSpec) -> Path:
    """Link ``executable`` into a shared object for the target's OS and architecture.

    Uses the target's :meth:`~hwface.targets.TargetSpec.linker`: the host's
    compiler for the host, ``$TVM_NDK_CC`` or clang + lld for Android targets,
    the target's cross compiler otherwise (checked before calling).

    Raises
    ------
    LinkError
        The compiler failed: its first error line (or that it printed nothing).
    """
    from tvm.support import cc, ndk

    path = Path(path)
    linker = spec.linker()
    try:
        if linker.kind == "host":
            executable.export_library(str(path))
        elif linker.kind == NDK:
            executable.export_library(str(path), fcompile=ndk.create_shared)
        else:
            executable.export_library(str(path), fcompile=cc.cross_compiler(linker.path, options=list(linker.options)))
    except (RuntimeError, OSError) as exc:
        # TVM's cc/ndk raise RuntimeError("Compilation error: ...") when the compiler fails, and
        # subprocess an OSError when it cannot start; anything else is not the compiler's doing
        if isinstance(exc, RuntimeError) and not str(exc).lstrip().startswith("Compilation error"):
            raise
        what = linker.path or "the host's C++ compiler"
        first = linker_error_line(str(exc)) if isinstance(exc, RuntimeError) else (exc.strerror or str(exc))
        raise LinkError(f"linking {path.name} for {spec.name} with {what} failed: "
                        f"{first or 'it exited with an error and printed nothing'}") from None
    return path
