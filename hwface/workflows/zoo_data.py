"""Every zoo network profiled (kernels and end to end) into the latency database, resumable.

- ``default``: TVM's default schedules. The zoo's networks are training networks
  (``split = "train"``): their kernels train the predictor and their end-to-end
  runs fit the per-call overhead.
- ``tuned``: every kernel tuned at one budget (:mod:`hwface.workflows.tuned`),
  smallest network first. These networks are held out (``split = "heldout"``):
  the tuned predictor is judged on them, and the claims report compares them. Each
  is also timed beside onnxruntime (:func:`compare_zoo_engines`).
"""

from __future__ import annotations

from typing import Callable

from hwface.workflows.networks import NetworkJob, NetworkRunReport, measure_networks
from hwface.workflows.tuned import TUNED_BUDGET, tune_at_budget


def zoo_by_madds() -> list[str]:
    """Zoo models from the fewest MAdds (counted by :func:`hwface.analysis.summarize`) to the most."""
    from hwface.analysis import summarize
    from hwface.models import list_models

    return sorted(list_models(), key=lambda m: (summarize(m).madds, m))


def measure_zoo(target: str = "host", regime: str = "default", models: list[str] | None = None,
                progress: Callable[[str], None] | None = None, budget: int = TUNED_BUDGET,
                guard=None) -> NetworkRunReport:
    """Profile every zoo network (or ``models``) in ``regime`` and store it.

    Parameters
    ----------
    target : str
    regime : str
        ``default`` (TVM's default schedules) or ``tuned`` (tuned at ``budget`` first).
    models : list of str, optional
        Default: every zoo model (tuned: from the fewest MAdds up); given, in their order.
    budget : int
        The tuned regime's trials a kernel.
    guard : DriftGuard, optional
        The drift guard to measure under (default a new one).
    """
    from hwface.errors import HwfaceError
    from hwface.models import list_models
    from hwface.targets import load_target

    spec = load_target(target)
    say = progress or (lambda msg: None)
    if regime == "default":
        jobs = [NetworkJob(m, lambda m=m: {"model": m}) for m in (models or list_models())]
    elif regime == "tuned":
        jobs = [NetworkJob(m, lambda m=m: {**tune_at_budget(spec, budget, lambda s: say(f"  {m}: {s}"), model=m),
                                           "split": "heldout"}) for m in (models or zoo_by_madds())]
    else:
        raise HwfaceError(f"the zoo is measured in the default or tuned regime, not {regime!r}")
    return measure_networks(spec, regime, jobs, progress, guard=guard)


def compare_zoo_engines(target: str = "host", models: list[str] | None = None,
                        progress: Callable[[str], None] | None = None, budget: int = TUNED_BUDGET) -> dict[str, int]:
    """Time each tuned zoo network (or ``models``) beside onnxruntime, alternately, and store the comparison.

    The TVM side is the artifact compiled with the budget's records (the
    network's tuned-regime schedules: tune it first, :func:`measure_zoo`). Host
    targets only (onnxruntime runs in this process). A rerun skips networks
    compared under today's fingerprint.

    Returns
    -------
    dict
        ``wanted``, ``already_done``, ``compared``.
    """
    import tempfile

    from hwface.compile.artifact import compile_artifact
    from hwface.errors import HwfaceError
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.latency.store import LatencyStore, utc_now
    from hwface.measure.engines import compare_engines
    from hwface.targets import load_target
    from hwface.tune import logs

    spec = load_target(target)
    if not spec.is_host:
        raise HwfaceError(f"onnxruntime runs on this machine: compare engines on the host target, not {spec.name}")
    say = progress or (lambda msg: None)
    today = current_fingerprint(spec).digest()
    wanted = models or zoo_by_madds()
    with LatencyStore.for_reading(spec.name) as db:
        frame = db.engine_comparisons_frame(fingerprint=today, regime="tuned")
    done = set(frame["network"][frame["trials_per_kernel"] == budget])
    todo = [m for m in wanted if m not in done]
    for i, m in enumerate(todo):
        say(f"[{len(wanted) - len(todo) + i + 1}/{len(wanted)}] {m}: TVM (K = {budget}) beside onnxruntime")
        database, db_hash = logs.open_database(spec, path=logs.budget_dir(spec, budget))
        art = compile_artifact(tempfile.mkdtemp(prefix="hwface-engines-"), spec.name, model=m,
                               database=database, tuning_db_hash=db_hash)
        c = compare_engines(art.directory, art.onnx_path)
        say(f"  {m}: TVM {c.tvm.median_us / 1e3:.2f} ms, onnxruntime {c.onnxruntime.median_us / 1e3:.2f} ms, "
            f"ratio {c.ratio:.3f} ({c.ratio_p10:.3f}-{c.ratio_p90:.3f}), max |diff| {c.max_abs_diff:.1e}")
        with LatencyStore.for_writing(spec.name) as db:
            db.add_engine_comparison(engine_row(m, spec, today, budget, db_hash, c, utc_now()))
    return {"wanted": len(wanted), "already_done": len(wanted) - len(todo), "compared": len(todo)}


def engine_row(network: str, spec, fingerprint: str, budget: int, db_hash: str | None, c, when: str) -> dict:
    """The ``engine_comparisons`` row of one :class:`~hwface.measure.engines.EngineComparison`."""
    return {
        "network": network, "target": spec.name, "device_key": spec.rpc_key, "fingerprint": fingerprint,
        "regime": "tuned", "trials_per_kernel": budget, "tuning_db_hash": db_hash, "threads": c.threads,
        "rounds": c.rounds, "tvm_median_us": c.tvm.median_us, "tvm_p10_us": c.tvm.p10_us,
        "tvm_p90_us": c.tvm.p90_us, "ort_median_us": c.onnxruntime.median_us, "ort_p10_us": c.onnxruntime.p10_us,
        "ort_p90_us": c.onnxruntime.p90_us, "ratio": c.ratio, "ratio_p10": c.ratio_p10, "ratio_p90": c.ratio_p90,
        "ort_version": c.onnxruntime_version, "max_abs_diff": c.max_abs_diff, "measured_at": when,
    }
