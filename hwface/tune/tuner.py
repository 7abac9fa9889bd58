"""`hwface tune`: MetaSchedule tuning of a network's fused kernels on a device over TVM RPC.

The kernels (tasks) come from the same fused module that `hwface compile`
builds (:func:`hwface.compile.network.fused_module`), so every record applies
to the deployed binary. Records go to the target's shared database
(:mod:`hwface.tune.logs`) as they are measured; a kernel that already has
``trials_per_kernel`` records there (tuned by an earlier run, or for another
model) is reused, not tuned again.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import tempfile
import time
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from hwface.errors import HwfaceError

MAX_TRIALS_PER_ITER = 64
# Round-robin commits each kernel's batch as soon as it is measured. MetaSchedule's
# "gradient" scheduler first sends one batch of every kernel and commits none until
# all have run (a SIGKILL or Ctrl-C then loses them all); with per-kernel trial caps
# summing to the budget, its gradient has nothing left to choose anyway.
TASK_SCHEDULER = "round-robin"
# Seconds a measurement waits for a free device before it counts as failed.
SESSION_WAIT_S = 30.0
# Evolutionary-search population per tuned candidate of a kernel, within bounds.
# A small per-kernel budget gains nothing from MetaSchedule's default population
# of 512 (the search runs on the host between measurements: with 2 trials per
# kernel it took 26 of a tiny network's 49 s of tuning); a budget of 32 or more
# gets the default.
POPULATION_PER_TRIAL = 16
MIN_POPULATION = 64
MAX_POPULATION = 512


@dataclass
class KernelResult:
    """One distinct kernel of the network after tuning.

    Latencies are means of the measured repeats, in microseconds; ``weight`` is
    how many times the kernel occurs in the network. ``reused``: it already had
    enough records; ``left_out``: it was outside ``top_kernels`` and not tuned.
    """

    name: str
    weight: int
    records: int
    trials_this_run: int
    best_us: float | None
    untuned_us: float | None
    reused: bool
    left_out: bool = False

    @property
    def speedup(self) -> float | None:
        if self.best_us and self.untuned_us:
            return self.untuned_us / self.best_us
        return None


@dataclass
class TuneReport:
    """What a tune did and what the network's kernels cost now."""

    network: str
    target: str
    device: str
    logs_dir: str
    db_hash: str | None
    trials_budget: int
    trials_per_kernel: int
    trials_run: int
    elapsed_s: float
    stopped: str | None
    kernels: list[KernelResult] = field(default_factory=list)
    emulated: bool = False

    def rows(self) -> list[dict]:
        """Per-kernel rows with the share of the network's (estimated) time."""
        total = sum(k.best_us * k.weight for k in self.kernels if k.best_us) or 1.0
        rows = []
        for k in sorted(self.kernels, key=lambda k: -(k.best_us or 0) * k.weight):
            rows.append({
                "kernel": k.name, "count": k.weight, "records": k.records, "trials_this_run": k.trials_this_run,
                "reused": k.reused, "left_out": k.left_out, "best_us": k.best_us, "untuned_us": k.untuned_us,
                "speedup": round(k.speedup, 2) if k.speedup else None,
                "share_%": round(100 * (k.best_us or 0) * k.weight / total, 1),
            })
        return rows

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kernels"] = self.rows()
        d["estimated_network_us"] = self.estimated_network_us()
        return d

    def estimated_network_us(self) -> dict:
        """Sum of kernel latencies x occurrences, tuned and untuned (kernels with both figures)."""
        both = [k for k in self.kernels if k.best_us and k.untuned_us]
        return {
            "tuned": round(sum(k.best_us * k.weight for k in both), 1),
            "untuned": round(sum(k.untuned_us * k.weight for k in both), 1),
            "kernels_counted": len(both),
        }


def export_candidate(module, spec) -> str:
    """Builder export for MetaSchedule: the candidate linked like an artifact, as a ``.so`` in a fresh folder.

    A phone cannot link MetaSchedule's default ``.tar``; the folder is removed
    after the candidate ran (MetaSchedule's RemoveBuildArtifact callback).
    """
    from hwface.compile.build import export_so

    return str(export_so(module, Path(tempfile.mkdtemp(prefix="hwface-ms-")) / "kernel.so", spec))


def make_builder(spec):
    """Builder compiling candidates in worker processes on every core, linking with the target's linker.

    The linker is checked up front. Call ``close()`` on it when done.
    """
    from hwface.measure.threads import usable_cores
    from hwface.tune.builder import PooledBuilder

    spec.linker()
    return PooledBuilder(partial(export_candidate, spec=spec), workers=usable_cores())


def create_session(rpc_config):
    """Open a session on a free device with bounded waits (TVM's own request waits forever).

    Runs inside the runner's worker process: a device that left the tracker makes
    the candidate fail at once instead of hanging the tune.
    """
    from hwface.rpc.devices import connect

    return connect((rpc_config.tracker_host, rpc_config.tracker_port), rpc_config.tracker_key,
                   timeout_s=SESSION_WAIT_S, session_timeout_s=rpc_config.session_timeout_sec).sess


def make_runner(tracker_host: str, tracker_port: int, key: str, devices: int, exclusive: bool,
                timeout_s: float = 60.0):
    """RPCRunner measuring on every device registered under ``key`` at once.

    ``exclusive``: the device shares this machine's cores, so each batch is
    measured to completion before the tuner compiles the next
    (:class:`hwface.tune.runner.ExclusiveRunner`).
    """
    from tvm.s_tir import meta_schedule as ms

    from hwface.rpc.procs import die_with_parent
    from hwface.tune.runner import ExclusiveRunner

    runner = ms.runner.RPCRunner(
        f_create_session=create_session,
        rpc_config=ms.runner.RPCConfig(tracker_host=tracker_host, tracker_port=tracker_port, tracker_key=key,
                                       session_timeout_sec=int(timeout_s), session_priority=1),
        evaluator_config=ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=40,
                                                   enable_cpu_cache_flush=False),
        max_workers=max(1, devices),
        initializer=partial(die_with_parent, signal.SIGKILL, os.getpid()),
    )
    return ExclusiveRunner(runner) if exclusive else runner


@dataclass(frozen=True)
class SearchSettings:
    """How MetaSchedule searches each kernel: its cost model and rounds of evolution per batch."""

    cost_model: str = "xgb"
    genetic_num_iters: int = 4


DEEP_SEARCH = SearchSettings()
# The tuned regime's search, for sampled kernels and budget-tuned networks alike: K trials
# are one batch, which an untrained cost model cannot rank, so a random model and two
# rounds of evolution pick as well in less time.
BUDGET_SEARCH = SearchSettings("random", 2)


def search_strategy(trials_per_kernel: int, genetic_num_iters: int = 4):
    """MetaSchedule's evolutionary search with a population in proportion to the per-kernel budget."""
    from tvm.s_tir import meta_schedule as ms

    population = min(MAX_POPULATION, max(MIN_POPULATION, POPULATION_PER_TRIAL * trials_per_kernel))
    return ms.search_strategy.EvolutionarySearch(population_size=population,
                                                 init_min_unmeasured=min(50, population // 2),
                                                 genetic_num_iters=genetic_num_iters)


def tune_contexts(tasks, trials_per_kernel: int, spec, seed: int | None, work_dir: str, database=None,
                  genetic_num_iters: int = DEEP_SEARCH.genetic_num_iters):
    """One MetaSchedule TuneContext per extracted task, each with its own :func:`search_strategy`; and the weights.

    With ``database``, a kernel it already holds is tuned on its stored copy
    (:func:`hwface.tune.logs.stored_twin`), so that its records replay there.
    """
    from hwface.tune.logs import stored_twin

    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.logging import get_loggers_from_work_dir
    from tvm.s_tir.meta_schedule.utils import fork_seed

    from hwface.tune.intrinsics import register_cpu_intrinsics

    register_cpu_intrinsics()
    loggers = get_loggers_from_work_dir(work_dir, [t.task_name for t in tasks])
    mods = [stored_twin(database, t.dispatched[0]) if database is not None else t.dispatched[0] for t in tasks]
    contexts = [ms.TuneContext(mod=mod, target=t.target, space_generator="post-order-apply",
                               search_strategy=search_strategy(trials_per_kernel, genetic_num_iters),
                               task_name=t.task_name,
                               logger=logger, rand_state=rand_state, num_threads=search_threads(spec)).clone()
                for t, mod, logger, rand_state in zip(tasks, mods, loggers, fork_seed(seed, n=len(tasks)))]
    return contexts, [t.weight for t in tasks]


def search_threads(spec) -> int:
    """Threads MetaSchedule's search may use: the host's cores when the host is the device, else 1."""
    return max(1, spec.target.get("num-cores", 1) if spec.is_host else 1)


@contextmanager
def meta_schedule_logging():
    """MetaSchedule's console logging at WARNING while tune contexts are made and run.

    MetaSchedule sets its console level from this logger when the contexts are
    made; its handlers are cleared first because a second tune in one process
    trips over the first one's.
    """
    ms_log = logging.getLogger("tvm.s_tir.meta_schedule")
    level = ms_log.level
    ms_log.setLevel(logging.WARNING)
    ms_log.handlers.clear()
    try:
        yield
    finally:
        ms_log.setLevel(level)


def measure_default(mods, spec, builder, runner, database=None, commit: set[int] | None = None) -> list[float | None]:
    """Mean latency (us) of each kernel's default (untuned) schedule, measured like a trial.

    ``mods`` are one-kernel IRModules (a task's ``dispatched[0]``). With
    ``database``, each measurement (of the kernels in ``commit``, default all) is
    also committed as a record with a no-op trace: TVM's default schedule is a
    candidate like any other, so the best record of a kernel is never slower than
    leaving it untuned.
    """
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.utils import remove_build_dir
    from tvm.s_tir.schedule import Schedule

    target = spec.tvm_target()
    built = builder.build([ms.builder.BuilderInput(m, target) for m in mods])
    inputs, index = [], []
    for i, (m, b) in enumerate(zip(mods, built)):
        if b.error_msg is None:
            inputs.append(ms.runner.RunnerInput(b.artifact_path, "cpu", ms.arg_info.ArgInfo.from_prim_func(m["main"])))
            index.append(i)
        else:
            _warn_unmeasured(i, "did not build", b.error_msg)
    out: list[float | None] = [None] * len(mods)
    results = [future.result() for future in runner.run(inputs)]
    for b in built:  # what MetaSchedule's RemoveBuildArtifact callback does for tuned candidates
        if b.artifact_path is not None:
            remove_build_dir(b.artifact_path)
    for i, res in zip(index, results):
        if res.error_msg is not None or not res.run_secs:
            _warn_unmeasured(i, "did not run", res.error_msg or "no timings came back")
        else:
            out[i] = 1e6 * sum(float(s) for s in res.run_secs) / len(res.run_secs)
            if database is not None and (commit is None or i in commit):
                mod = mods[i]
                sch = Schedule(mod)
                sch.get_sblock("root")  # a no-op step: MetaSchedule ignores records with an empty trace
                database.commit_tuning_record(ms.database.TuningRecord(
                    sch.trace, database.commit_workload(mod), [float(s) for s in res.run_secs], target,
                    ms.arg_info.ArgInfo.from_prim_func(mod["main"]),
                ))
    return out


def _warn_unmeasured(index: int, what: str, error: str) -> None:
    """Say on stderr why a kernel's default schedule has no latency (its first error line)."""
    first = next((line.strip() for line in error.splitlines() if line.strip()), "no message")
    print(f"hwface: warning: the default schedule of kernel {index} {what}, so it has no untuned latency: {first}",
          file=sys.stderr)


def heaviest_kernels(weights: list[int], latencies_us: list[float | None], n: int) -> set[int]:
    """Indices of the ``n`` kernels with the largest latency x occurrences (unknown latencies rank last)."""
    order = sorted(range(len(weights)), key=lambda i: -(latencies_us[i] or 0.0) * weights[i])
    return set(order[:n])


def tune(
    model: str | None = None,
    onnx_path: str | Path | None = None,
    target: str = "host",
    trials: int = 64,
    trials_per_kernel: int | None = None,
    tracker: str | None = None,
    key: str | None = None,
    input_size: tuple[int, int] | None = None,
    input_shape: tuple[int, ...] | None = None,
    measure_baseline: bool = True,
    top_kernels: int | None = None,
    show_progress: bool = True,
    seed: int | None = 0,
    logs_path: str | Path | None = None,
    search: SearchSettings = DEEP_SEARCH,
) -> TuneReport:
    """Tune a zoo network or an ONNX file for a target and keep the records.

    Parameters
    ----------
    model, onnx_path, target : str
        Exactly one of a zoo name or an ONNX file; the target's name or file.
    trials : int
        Global trial budget of this run (measurements on the device).
    trials_per_kernel : int, optional
        A kernel with this many records is finished (and reused by later runs
        and other models); default ``ceil(trials / kernels tuned)``.
    tracker : str, optional
        ``HOST:PORT``; the host target without one uses the embedded device.
    key : str, optional
        Device key (default: the target's ``rpc_key``). The key of an emulated
        target (``arm64-qemu``) makes the run a rehearsal: without a tracker
        hwface starts that device itself, and the records go to
        :func:`hwface.tune.logs.rehearsal_dir`, never to the target's logs.
    measure_baseline : bool
        Also measure every kernel's untuned schedule (for the speedup column).
    top_kernels : int, optional
        Tune only this many kernels, those with the largest share of the
        network's time (:meth:`TunePlan.choose`). Default: every kernel.
    logs_path : path, optional
        Folder of the tuning database instead of the target's (or the rehearsal's).
    search : SearchSettings
        Cost model and evolution rounds (:data:`BUDGET_SEARCH` for the tuned regime).
    """
    from hwface.compile.network import fused_module, load_network
    from hwface.rpc.devices import require_device
    from hwface.rpc.embedded import device_for
    from hwface.tune import logs

    spec = _checked_target(target, trials, trials_per_kernel, top_kernels)
    device_spec, rehearsal = device_target(spec, key, tracker)
    folder = Path(logs_path) if logs_path else (logs.rehearsal_dir(spec, key) if rehearsal else None)
    start = time.perf_counter()
    with device_for(device_spec, tracker) as ep:
        devices = require_device((ep.tracker_host, ep.tracker_port), ep.key)
        network = load_network(model, onnx_path, input_size, input_shape)
        tasks = logs.kernel_tasks(fused_module(network, spec), spec)
        if not tasks:
            raise HwfaceError(f"{network.name} has no kernels to tune")
        database, _ = logs.open_database(spec, create=True, path=folder)
        focus = min(top_kernels or len(tasks), len(tasks))
        plan = TunePlan(tasks, trials, trials_per_kernel or max(1, math.ceil(trials / focus)),
                        logs.record_counts(database, [t.dispatched[0] for t in tasks]))
        with closing(make_builder(spec)) as builder:
            runner = make_runner(ep.tracker_host, ep.tracker_port, ep.key, devices, exclusive=spec.is_host)
            untuned = plan.baseline(spec, builder, runner, database, measure_baseline or bool(top_kernels))
            plan.choose(database, untuned, top_kernels)
            progress = run_search(plan, spec, seed, builder, runner, database, ep, show_progress, search)
    status = logs.status(spec, folder)
    report = TuneReport(
        network=network.name, target=spec.name, device=progress.device, logs_dir=str(status.path),
        db_hash=status.db_hash, trials_budget=trials, trials_per_kernel=plan.per_kernel,
        trials_run=progress.trials, elapsed_s=round(time.perf_counter() - start, 1), stopped=progress.stopped,
        emulated=rehearsal or device_spec.emulated,
    )
    report.kernels = plan.results(database, untuned, progress.per_task)
    return report


def _checked_target(target: str, trials: int, trials_per_kernel: int | None, top_kernels: int | None):
    """The target to tune, its linker found, once the budgets are known to be sane."""
    from hwface.targets import load_target

    _check_budgets(trials, trials_per_kernel, top_kernels)
    spec = load_target(target)
    spec.linker()
    return spec


def _check_budgets(trials: int, trials_per_kernel: int | None, top_kernels: int | None) -> None:
    if trials < 1:
        raise HwfaceError("--trials must be at least 1")
    if top_kernels is not None and top_kernels < 1:
        raise HwfaceError("--top-kernels must be at least 1")
    if trials_per_kernel is not None and trials_per_kernel < 1:
        raise HwfaceError("--trials-per-kernel must be at least 1")


def device_target(spec, key: str | None, tracker: str | None):
    """(the target whose device runs the candidates, whether the run is a rehearsal on an emulated device).

    A ``key`` of an emulated target file other than ``spec``'s own makes a
    rehearsal; without a tracker, that emulated target (whose device hwface
    starts) runs the candidates.
    """
    import dataclasses

    from hwface.compile.elf import triple_machine
    from hwface.targets import TargetError, target_for_key

    if not key or key == spec.rpc_key:
        return spec, False
    try:
        emulated = target_for_key(key)
    except TargetError:
        emulated = None
    if emulated is None or not emulated.emulated:
        return dataclasses.replace(spec, rpc_key=key), False
    if triple_machine(emulated.triple()) != triple_machine(spec.triple()):
        raise HwfaceError(f"--key {key} rehearses on an emulated {triple_machine(emulated.triple())} device, but "
                          f"{spec.name} builds for {triple_machine(spec.triple())}: pick a target of that device")
    return (emulated if not tracker else dataclasses.replace(spec, rpc_key=key, emulated=True)), True


@dataclass
class TunePlan:
    """Which kernels a tune measures and tunes: the tasks, the budgets, and what the logs held before."""

    tasks: list
    trials: int
    per_kernel: int
    done_before: list[int]
    chosen: set[int] = field(default_factory=set)

    def baseline(self, spec, builder, runner, database, measure: bool) -> list[float | None]:
        """Untuned latency of every kernel in us (None where not measured); first-seen kernels' go to the logs."""
        if not measure:
            return [None] * len(self.tasks)
        first_seen = {i for i, n in enumerate(self.done_before) if n == 0}
        return measure_default([t.dispatched[0] for t in self.tasks], spec, builder, runner, database, first_seen)

    def choose(self, database, untuned: list[float | None], top_kernels: int | None) -> None:
        """Keep every kernel, or the ``top_kernels`` of the largest share of the network's time.

        A kernel's share: best recorded latency, else untuned latency, x occurrences
        (where more trials pay off most).
        """
        from hwface.tune import logs

        self.chosen = set(range(len(self.tasks)))
        if top_kernels:
            best_known = [logs.best_seconds(database, t.dispatched[0]) for t in self.tasks]
            self.chosen = heaviest_kernels([int(t.weight) for t in self.tasks],
                                           [1e6 * b if b else u for b, u in zip(best_known, untuned)],
                                           min(top_kernels, len(self.tasks)))

    @property
    def todo(self) -> list[int]:
        """Indices of the chosen kernels with fewer than ``per_kernel`` records."""
        return [i for i, n in enumerate(self.done_before) if n < self.per_kernel and i in self.chosen]

    def results(self, database, untuned: list[float | None], trials_run: dict[str, int]) -> list[KernelResult]:
        """One :class:`KernelResult` per kernel, from the logs after the run."""
        from hwface.tune import logs

        records = logs.record_counts(database, [t.dispatched[0] for t in self.tasks])
        out = []
        for i, t in enumerate(self.tasks):
            best = logs.best_seconds(database, t.dispatched[0])
            out.append(KernelResult(
                name=t.task_name, weight=int(t.weight), records=records[i],
                trials_this_run=trials_run.get(t.task_name, 0), best_us=round(best * 1e6, 2) if best else None,
                untuned_us=round(untuned[i], 2) if untuned[i] else None,
                reused=self.done_before[i] >= self.per_kernel,
                left_out=self.done_before[i] < self.per_kernel and i not in self.chosen,
            ))
        return out


def run_search(plan: TunePlan, spec, seed: int | None, builder, runner, database, ep, show_progress: bool,
               search: SearchSettings = DEEP_SEARCH):
    """MetaSchedule's search over the plan's kernels to do (Ctrl-C stops it after the batch); its progress."""
    from tvm.s_tir import meta_schedule as ms

    from hwface.tune.progress import TuneProgress

    todo = plan.todo
    progress = TuneProgress([plan.tasks[i].task_name for i in todo], budget=min(plan.trials, plan.per_kernel * len(todo)),
                            device=f"{ep.key}@{ep.tracker}", tracker=ep.tracker, key=ep.key, enabled=show_progress)
    if not todo:
        return progress
    with meta_schedule_logging():
        contexts, weights = tune_contexts([plan.tasks[i] for i in todo], plan.per_kernel, spec, seed,
                                          tempfile.mkdtemp(prefix="hwface-tune-"), database, search.genetic_num_iters)
        previous = signal.signal(signal.SIGINT, progress.request_stop)
        try:
            with progress:
                ms.tune.tune_tasks(
                    tasks=contexts, task_weights=weights, work_dir=tempfile.mkdtemp(prefix="hwface-tune-"),
                    max_trials_global=plan.trials, max_trials_per_task=plan.per_kernel,
                    num_trials_per_iter=max(1, min(MAX_TRIALS_PER_ITER, plan.per_kernel)),
                    builder=builder, runner=runner, database=database,
                    measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), progress.callback],
                    task_scheduler=TASK_SCHEDULER, module_equality="structural", cost_model=search.cost_model,
                )
        finally:
            signal.signal(signal.SIGINT, previous)
    return progress
