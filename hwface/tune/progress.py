"""Progress of a tune (rich): kernels done, trials, best latency so far, ETA; clean stop on Ctrl-C."""

from __future__ import annotations

import sys

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

# A batch whose every measurement fails this many times in a row means the device is gone.
LOST_AFTER_FAILED_BATCHES = 2


class TuneProgress:
    """Tracks trials per kernel, shows a progress bar, and ends the tune early when asked.

    ``stopped`` is None after a complete run, ``"interrupted"`` after Ctrl-C and
    ``"device lost: ..."`` when the device stopped answering.
    """

    def __init__(self, task_names: list[str], budget: int, device: str, tracker: str, key: str,
                 enabled: bool = True) -> None:
        self.task_names = task_names
        self.budget = budget
        self.device = device
        self.tracker = tracker
        self.key = key
        self.enabled = enabled
        self.trials = 0
        self.per_task: dict[str, int] = {}
        self.best_us: dict[str, float] = {}
        self.stopped: str | None = None
        self._stop_requested = False
        self._failed_batches = 0
        self._bar = None
        self.callback = _Callback(self)

    def __enter__(self) -> "TuneProgress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[bold]tuning"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
                TextColumn("{task.fields[kernels]}"), TextColumn("{task.fields[best]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), transient=False,
                console=_console(),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("tune", total=self.budget, kernels=self._kernels_text(), best="")
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def request_stop(self, signum=None, frame=None) -> None:
        """SIGINT handler: finish the batch in flight, keep its records, stop."""
        self._stop_requested = True
        self.stopped = "interrupted"
        print("\nhwface: stopping after the batch in flight (records measured so far are kept)", file=sys.stderr)

    def _kernels_text(self) -> str:
        started = sum(1 for n in self.task_names if self.per_task.get(n))
        return f"{started}/{len(self.task_names)} kernels"

    def on_batch(self, scheduler, task_id: int, runner_results) -> None:
        ctx = scheduler.tasks_[task_id].ctx
        name = str(ctx.task_name)
        n = len(runner_results)
        self.trials += n
        self.per_task[name] = self.per_task.get(name, 0) + n
        ok = [r for r in runner_results if r.error_msg is None and r.run_secs]
        for r in ok:
            us = 1e6 * sum(float(s) for s in r.run_secs) / len(r.run_secs)
            self.best_us[name] = min(self.best_us.get(name, us), us)
        self._failed_batches = 0 if ok or n == 0 else self._failed_batches + 1
        if self._failed_batches >= LOST_AFTER_FAILED_BATCHES and not self._device_alive():
            self.stopped = f"device lost: no {self.key!r} device answers at {self.tracker} (records so far are kept)"
            self._stop_requested = True
        if self._bar is not None:
            best = f"best {name}: {self.best_us[name]:.1f} us" if name in self.best_us else ""
            self._bar.update(self._task, completed=min(self.trials, self.budget), kernels=self._kernels_text(),
                             best=best)
            if not self._bar.console.is_terminal:  # a log file gets one line per batch instead of a redrawn bar
                print(f"tuning {min(self.trials, self.budget)}/{self.budget} trials, {self._kernels_text()}, {best}, "
                      f"{self._bar.tasks[0].elapsed or 0:.0f} s", file=sys.stderr, flush=True)
        if self._stop_requested:
            for i, task in enumerate(scheduler.tasks_):
                if not task.is_terminated:
                    scheduler.terminate_task(i)

    def _device_alive(self) -> bool:
        from hwface.rpc.devices import list_devices

        try:
            return any(d.key == self.key and d.total > 0 for d in list_devices(self.tracker, timeout_s=3.0))
        except Exception:  # an unreachable tracker means the device is gone too
            return False


def _console():
    from rich.console import Console

    return Console(file=sys.stderr)


@derived_object
class _Callback(PyMeasureCallback):
    def __init__(self, progress: TuneProgress) -> None:
        self.progress = progress

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results) -> None:
        self.progress.on_batch(task_scheduler, task_id, runner_results)
