"""What a tuning database holds for a fused module's kernels: their tasks, their records, the best of them.

Read by :func:`hwface.compile.compile_artifact` (how many kernels have records)
and by the tuner (:mod:`hwface.tune`), which writes the records; the logs on disk
are :mod:`hwface.tune.logs`.
"""

from __future__ import annotations

from hwface.targets import TargetSpec


def kernel_tasks(fused, spec: TargetSpec) -> list:
    """MetaSchedule tasks (one per distinct kernel) of what a fused module's artifact runs.

    Kernels the artifact runs as views (pure reshapes; on CPU targets, channel
    splits and concatenations, see :func:`hwface.compile.build.kernels_left`) are
    left out: tuning them would spend trials on code that never runs.
    """
    from tvm.s_tir import meta_schedule as ms

    from hwface.compile.build import kernels_left
    from hwface.compile.slice_views import uses_views

    target = spec.tvm_target()
    left = kernels_left(fused, uses_views(target))
    return [t for t in ms.relax_integration.extract_tasks(fused, target) if t.task_name in left]


def count_tuned_kernels(fused, spec: TargetSpec, database) -> tuple[int, int]:
    """(distinct kernels with a tuning record, distinct kernels) of what a fused module's artifact runs."""
    tasks = kernel_tasks(fused, spec)
    counts = record_counts(database, [t.dispatched[0] for t in tasks])
    return sum(1 for n in counts if n > 0), len(tasks)


def record_counts(database, mods) -> list[int]:
    """Records (measured trials, failed ones included) a database holds for each kernel (workload).

    The records are read once for all kernels.
    """
    workloads = [database.commit_workload(m) if database.has_workload(m) else None for m in mods]
    records = database.get_all_tuning_records() if any(w is not None for w in workloads) else []
    return [0 if w is None else sum(1 for r in records if r.workload.same_as(w)) for w in workloads]


def best_seconds(database, mod) -> float | None:
    """Best measured mean latency of a kernel in seconds, or None."""
    if not database.has_workload(mod):
        return None
    top = database.get_top_k(database.commit_workload(mod), 1)
    if not top or not top[0].run_secs:
        return None
    secs = [float(s) for s in top[0].run_secs]
    return sum(secs) / len(secs)
