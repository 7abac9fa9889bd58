"""Build a fused Relax module for a target and link it into a ``.so`` the device loads as is."""

from __future__ import annotations

from pathlib import Path

from hwface.targets import NDK, TargetSpec


def build(mod, spec: TargetSpec, database=None):
    """Compile a fused Relax module (see :func:`hwface.compile.pipeline.fuse`) for ``spec``.

    Parameters
    ----------
    mod : tvm.IRModule
        Fused module.
    spec : TargetSpec
    database : meta_schedule.database.Database, optional
        Tuning records; applied with ``MetaScheduleApplyDatabase`` on the same
        fused module. Kernels without a record keep TVM's default schedule.

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
    return tvm.compile(mod, target=target)


def export_so(executable, path: str | Path, spec: TargetSpec) -> Path:
    """Link ``executable`` into a shared object for the target's OS and architecture.

    Uses the host's compiler for the host target, ``$TVM_NDK_CC`` for Android
    targets and the target's cross compiler otherwise (checked before calling).
    """
    from tvm.support import cc, ndk

    path = Path(path)
    linker = spec.linker()
    if linker is None:
        executable.export_library(str(path))
    elif spec.cross_compiler == NDK:
        executable.export_library(str(path), fcompile=ndk.create_shared)
    else:
        executable.export_library(str(path), fcompile=cc.cross_compiler(linker))
    return path
