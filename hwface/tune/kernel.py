"""Tuning of standalone kernels (PrimFuncs) with a small trial budget: the sampler's ``tuned`` regime.

A network's kernels are tuned by :func:`hwface.tune.tuner.tune` into the
target's shared database; the latency sampler's kernels are throwaway
configurations, so they are tuned here in a private in-memory database and only
the best schedule of each is kept (the latency rows carry its hash and the trial
budget). The candidates are built and measured like a network's
(:func:`hwface.tune.tuner.make_builder`, :func:`hwface.tune.tuner.make_runner`),
and TVM's default schedule is measured as one more candidate, so a tuned kernel
is never slower than the untuned one.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Mapping

# Tuned candidates per kernel in the sampler's tuned regime (the shipped rows used this).
DEFAULT_TRIALS = 8


@dataclass(frozen=True)
class TunedKernel:
    """The best schedule found for one kernel.

    Attributes
    ----------
    func : tvm.tirx.PrimFunc
        The scheduled kernel (marked scheduled, so building it keeps the schedule).
    schedule_hash : str
        First 16 hex digits of the SHA-256 of the best record's trace: identifies the schedule.
    best_us : float
        Mean latency of the best candidate as the tuner measured it, in microseconds.
    trials : int
        Candidates measured for it, TVM's default schedule included.
    default_is_best : bool
        No tuned candidate beat TVM's default schedule.
    """

    func: Any
    schedule_hash: str
    best_us: float
    trials: int
    default_is_best: bool


def tune_kernels(funcs: Mapping[str, Any], spec, endpoint, trials: int, seed: int = 0) -> dict[str, TunedKernel]:
    """Tune each PrimFunc with ``trials`` MetaSchedule candidates on the device at ``endpoint``.

    Parameters
    ----------
    funcs : mapping of str to tvm.tirx.PrimFunc
        Kernels by name (unscheduled, as :func:`hwface.compile.pipeline.fuse` makes them).
    spec : hwface.targets.TargetSpec
    endpoint : hwface.rpc.embedded.DeviceEndpoint
        Tracker and key of the device(s) measuring the candidates.
    trials : int
        Tuned candidates per kernel (TVM's default schedule is measured besides).
    seed : int
        Seed of the search.

    Returns
    -------
    dict
        Name -> :class:`TunedKernel`; a kernel none of whose candidates ran is left out.
    """
    import tvm
    from tvm.s_tir import meta_schedule as ms

    from hwface.errors import HwfaceError
    from hwface.rpc.devices import devices_under
    from hwface.tune.intrinsics import register_cpu_intrinsics
    from hwface.tune.logs import best_seconds, record_counts
    from hwface.tune.tuner import (BUDGET_SEARCH, make_builder, make_runner, measure_default, meta_schedule_logging,
                                   search_strategy, search_threads)

    if trials < 1:
        raise HwfaceError("the tuned regime needs at least 1 trial per kernel")
    if not funcs:
        return {}
    target = spec.tvm_target()
    names = list(funcs)
    mods = [tvm.IRModule({"main": funcs[n].with_attr("global_symbol", "main")}) for n in names]
    devices = devices_under(endpoint.tracker, endpoint.key) or 1
    with closing(make_builder(spec)) as builder:
        runner = make_runner(endpoint.tracker_host, endpoint.tracker_port, endpoint.key, devices, exclusive=spec.is_host)
        database = ms.database.MemoryDatabase()
        default_us = measure_default(mods, spec, builder, runner, database)

        register_cpu_intrinsics()
        with meta_schedule_logging():
            contexts = [
                ms.TuneContext(mod=mod, target=target, space_generator="post-order-apply",
                               search_strategy=search_strategy(trials, BUDGET_SEARCH.genetic_num_iters), task_name=name,
                               rand_state=seed + i, num_threads=search_threads(spec)).clone()
                for i, (name, mod) in enumerate(zip(names, mods))
            ]
            ms.tune.tune_tasks(
                tasks=contexts, task_weights=[1.0] * len(contexts), work_dir=tempfile.mkdtemp(prefix="hwface-tune-kernels-"),
                max_trials_global=trials * len(contexts), max_trials_per_task=trials, num_trials_per_iter=trials,
                builder=builder, runner=runner, database=database, task_scheduler="round-robin",
                cost_model=BUDGET_SEARCH.cost_model, module_equality="structural",
            )

    out: dict[str, TunedKernel] = {}
    counts = record_counts(database, mods)
    for name, mod, default, count in zip(names, mods, default_us, counts):
        sch = database.query_schedule(mod, target, "main")
        best = best_seconds(database, mod)
        if sch is None or best is None:
            continue
        out[name] = TunedKernel(
            func=sch.mod["main"].with_attr("tirx.is_scheduled", True),
            schedule_hash=hashlib.sha256(str(sch.trace).encode()).hexdigest()[:16], best_us=1e6 * best,
            trials=count, default_is_best=default is not None and math.isclose(1e6 * best, default, rel_tol=1e-9))
    return out
