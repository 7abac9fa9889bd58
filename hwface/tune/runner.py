"""A MetaSchedule runner that measures a batch to completion before the tuner goes on.

MetaSchedule overlaps work: while the device measures one batch, the tuner
searches and compiles the next. When the device is this machine (the ``host``
target), that compilation runs on the very cores being timed, so candidates
measured beside an LLVM build look slower than they are and the search keeps
the luckiest rather than the fastest. Waiting for each batch keeps the timing
cores idle; a remote device (a phone, a board) needs no such wait.
"""

from __future__ import annotations

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.runner import PyRunner, RunnerFuture, RunnerInput


@derived_object
class ExclusiveRunner(PyRunner):
    """Wrap ``runner``: :meth:`run` returns only after every measurement of the batch finished."""

    def __init__(self, runner) -> None:
        super().__init__()
        self.runner = runner

    def run(self, runner_inputs: list[RunnerInput]) -> list[RunnerFuture]:
        futures = self.runner.run(runner_inputs)
        for future in futures:
            future.result()
        return futures
