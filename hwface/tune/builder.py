"""A MetaSchedule builder with long-lived worker processes and a per-candidate timeout.

MetaSchedule's LocalBuilder starts a fresh pool of worker processes for every
batch (to contain a memory leak); each worker imports TVM, which on a loaded
2-core machine costs 10-30 s per batch, far more than compiling the batch
itself (0.1-0.5 s a kernel). Building in this process avoids that but cannot
stop a candidate whose LLVM code generation never ends (one seesaw_share
candidate ran 10 minutes and stopped the tune). This builder keeps its workers
across batches, recycles each after :data:`MAX_USES` builds (the leak), and
kills and replaces a worker whose build exceeds the timeout, which then counts
as a failed candidate.
"""

from __future__ import annotations

import os
import signal
from functools import partial

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.builder import BuilderInput, BuilderResult, PyBuilder

# Builds a worker process serves before it is replaced.
MAX_USES = 256
# Seconds one candidate may take to compile and link.
BUILD_TIMEOUT_S = 60.0


def build_and_export(f_export, mod_and_target) -> str:
    """Compile one candidate as MetaSchedule's default build does and link it with ``f_export`` (runs in a worker).

    MetaSchedule's ``default_build`` first imports ``tvm.s_tir.tensor_intrin``,
    which parses some 250 TVMScript intrinsics (CUDA's among them) and takes a
    new worker 12-20 s, longer than the build timeout on a loaded machine. A
    candidate arrives already scheduled (any tensorized block is inlined), so
    building it needs no intrinsic table.
    """
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod, target = mod_and_target
    return f_export(tvm_build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod), target=target))


@derived_object
class PooledBuilder(PyBuilder):
    """Build and link each candidate with ``f_export(runtime_module) -> path`` in worker processes.

    Parameters
    ----------
    f_export : callable
        Links a built runtime module into a file the runner uploads (a ``.so``);
        must be picklable.
    workers : int
        Worker processes building at once.
    timeout_s : float
        Seconds a candidate may take before its worker is killed.
    """

    def __init__(self, f_export, workers: int = 1, timeout_s: float = BUILD_TIMEOUT_S) -> None:
        super().__init__()
        from tvm.support.popen_pool import PopenPoolExecutor

        from hwface.rpc.procs import die_with_parent

        self.f_export = f_export
        self.timeout_s = timeout_s
        # a killed tune takes its workers with it, even mid-build (they would finish the build first)
        self.pool = PopenPoolExecutor(max_workers=workers, timeout=timeout_s, maximum_process_uses=MAX_USES,
                                      initializer=die_with_parent, initargs=(signal.SIGKILL, os.getpid()))

    def build(self, build_inputs: list[BuilderInput]) -> list[BuilderResult]:
        from tvm.support.popen_pool import StatusKind

        results = []
        for res in self.pool.map_with_error_catching(
            partial(build_and_export, self.f_export), [(item.mod, item.target) for item in build_inputs]
        ):
            if res.status == StatusKind.COMPLETE:
                results.append(BuilderResult(res.value, None))
            elif res.status == StatusKind.TIMEOUT:
                results.append(BuilderResult(None, f"build timed out after {self.timeout_s:.0f} s"))
            else:  # a bad candidate is a failed trial, not a failed tune
                results.append(BuilderResult(None, f"build failed: {res.value}"))
        return results

    def close(self) -> None:
        """Stop the worker processes."""
        self.pool.shutdown(wait=False)
