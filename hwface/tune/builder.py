"""A MetaSchedule builder that compiles candidates in this process.

MetaSchedule's LocalBuilder starts a fresh pool of worker processes for every
batch (to contain a memory leak); each worker imports TVM, which on a loaded
2-core machine costs 10-30 s per batch, far more than compiling the batch
itself (0.1-0.5 s a kernel). Building in-process removes that cost; the price
is no per-candidate timeout and no isolation from a crashing LLVM, neither of
which the fused face-network kernels have needed here.
"""

from __future__ import annotations

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.builder import BuilderInput, BuilderResult, PyBuilder


@derived_object
class InProcessBuilder(PyBuilder):
    """Build and link each candidate with ``f_export(runtime_module) -> path``.

    Parameters
    ----------
    f_export : callable
        Links a built runtime module into a file the runner uploads (a ``.so``).
    """

    def __init__(self, f_export) -> None:
        super().__init__()
        self.f_export = f_export

    def build(self, build_inputs: list[BuilderInput]) -> list[BuilderResult]:
        from tvm.s_tir.meta_schedule.builder.local_builder import default_build

        results = []
        for item in build_inputs:
            try:
                module = default_build(item.mod, item.target, None)
                results.append(BuilderResult(self.f_export(module), None))
            except Exception as exc:  # a bad candidate is a failed trial, not a failed tune
                results.append(BuilderResult(None, f"InProcessBuilder: {type(exc).__name__}: {exc}"))
        return results
