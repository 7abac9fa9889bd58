"""The tuned regime's networks: each tuned at one budget ``K`` into the budget's shared logs, then measured.

Every network measured in the tuned regime (zoo or held-out) has each kernel tuned
with the same ``K`` trials at most (TVM's default schedule measured besides)
and the same search as the sampler's kernels (:data:`hwface.tune.tuner.BUDGET_SEARCH`),
into one database per budget (:func:`hwface.tune.logs.budget_dir`)
so a kernel two networks share is tuned once. The records stay there, so every
figure can be rebuilt from the records it was measured with; the target's own
logs, which ``hwface compile`` deploys, are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from hwface.latency.store import TUNED_BUDGET  # noqa: F401  (K, re-exported for the workflows)

UNBOUNDED_TRIALS = 10**9  # the global budget of a budget tune: only the per-kernel budget counts


def tune_at_budget(spec, budget: int, say: Callable[[str], None], model: str | None = None,
                   onnx_path: str | Path | None = None) -> dict[str, Any]:
    """Tune a network's kernels that lack ``budget`` records; the tuned-regime arguments of ``profile_model``.

    Returns
    -------
    dict
        ``database`` (the budget's records), ``tuning_db_hash``, ``regime`` and
        ``trials_per_kernel``, plus ``model`` or ``onnx_path``.
    """
    from hwface.tune import logs
    from hwface.tune.tuner import BUDGET_SEARCH, tune

    folder = logs.budget_dir(spec, budget)
    report = tune(model=model, onnx_path=onnx_path, target=spec.name, trials=UNBOUNDED_TRIALS,
                  trials_per_kernel=budget, show_progress=False, logs_path=folder, search=BUDGET_SEARCH)
    fresh = sum(1 for k in report.kernels if k.trials_this_run)
    say(f"tuned {fresh} of {len(report.kernels)} kernels ({report.trials_run} trials, {report.elapsed_s:.0f} s; "
        f"the others had {budget} records)")
    database, db_hash = logs.open_database(spec, path=folder)
    source = {"model": model} if model else {"onnx_path": onnx_path}
    return {**source, "database": database, "tuning_db_hash": db_hash, "regime": "tuned",
            "trials_per_kernel": budget}
