"""The tuned zoo timed in rounds: every network on both engines once a round, in one run (host).

What the claims compare are ratios between networks (seesaw_share over
seesaw_shuffle, mbconv_7x7 over frmbconv_7x7, ...). Profiled one after another,
each network's end-to-end time comes from a different state of a box that drifts
by up to 2x; timed in rounds (:mod:`hwface.measure.rounds`), each pair's ratio is
taken round by round. The TVM side of each network is the artifact compiled with
the tuned regime's budget records (tune it first: ``measure_latency_data.py
zoo-tuned``); onnxruntime runs the same ONNX file with the same input and threads.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hwface.workflows.tuned import TUNED_BUDGET

ENGINES = ("tvm", "onnxruntime")


@dataclass(frozen=True)
class RoundsRun:
    """What one run timed: its id, networks, rounds and the rows it stored."""

    run_id: str
    networks: tuple[str, ...]
    rounds: int
    stored: int


def time_zoo_in_rounds(target: str = "host", models: list[str] | None = None, budget: int = TUNED_BUDGET,
                       rounds: int | None = None, repeat: int | None = None, min_repeat_ms: float | None = None,
                       progress: Callable[[str], None] | None = None) -> RoundsRun:
    """Compile each network with the budget's records, time all of them in rounds on both engines, store the run.

    Parameters
    ----------
    target : str
        A host target (onnxruntime runs in this process).
    models : list of str, optional
        Default: every zoo network (then every zoo variant, :mod:`hwface.nas.variants`)
        measured in the tuned regime at ``budget`` under today's fingerprint.
    budget : int
        The tuned regime's trials a kernel (whose records each artifact applies).
    rounds, repeat, min_repeat_ms : optional
        Rounds, samples per timing and minimum sample length (ms); defaults of
        :mod:`hwface.measure.rounds` and :mod:`hwface.measure.engines`.
    """
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.latency.store import LatencyStore, utc_now
    from hwface.measure import engines
    from hwface.measure.rounds import ROUNDS, time_in_rounds

    spec = _host(target)
    today = current_fingerprint(spec).digest()
    say = progress or (lambda msg: None)
    models = models or _tuned_networks(spec.name, today, budget)
    rounds, repeat = rounds or ROUNDS, repeat or engines.REPEAT
    min_repeat_ms = min_repeat_ms or engines.MIN_REPEAT_MS
    timers, loaded = {}, {}
    with tempfile.TemporaryDirectory(prefix="hwface-rounds-") as work:
        for i, m in enumerate(models):
            say(f"[{i + 1}/{len(models)}] {m}: compiling with the K = {budget} records")
            loaded[m] = _timers(spec, m, budget, repeat, min_repeat_ms, Path(work) / m)
            timers.update({(m, "tvm"): loaded[m][0].tvm, (m, "onnxruntime"): loaded[m][0].onnxruntime})
        when = utc_now()
        result = time_in_rounds(timers, rounds, say)
    run_id = hashlib.sha256(f"{today}|{when}|{','.join(models)}".encode()).hexdigest()[:16]
    rows = [{"run_id": run_id, "network": m, "engine": e, "target": spec.name, "device_key": spec.rpc_key,
             "fingerprint": today, "regime": "tuned", "trials_per_kernel": budget, "tuning_db_hash": loaded[m][1],
             "threads": loaded[m][0].threads, "repeat": repeat, "min_repeat_ms": min_repeat_ms,
             "rounds_us": result.medians_us[(m, e)], "median_us": result.median_us((m, e)), "measured_at": when}
            for m in models for e in ENGINES]
    with LatencyStore.for_writing(spec.name) as db:
        stored = db.add_round_timings(rows)
    return RoundsRun(run_id, tuple(models), rounds, stored)


def _host(target: str):
    from hwface.errors import HwfaceError
    from hwface.targets import load_target

    spec = load_target(target)
    if not spec.is_host:
        raise HwfaceError(f"onnxruntime runs on this machine: time the zoo in rounds on the host, not {spec.name}")
    return spec


def _tuned_networks(target: str, fingerprint: str, budget: int) -> list[str]:
    """The zoo networks measured in the tuned regime at ``budget`` (their records exist), in the zoo's order."""
    from hwface.errors import HwfaceError
    from hwface.latency.store import LatencyStore
    from hwface.models import list_models

    with LatencyStore.for_reading(target) as db:
        nets = db.networks_frame(fingerprint=fingerprint, regime="tuned")
    at_budget = nets[nets["trials_per_kernel"] == budget]
    done = set(at_budget["name"][at_budget["origin"] == "zoo"])
    if not done:
        raise HwfaceError(f"no zoo network is tuned at K = {budget} under today's fingerprint: "
                          "run `python benchmarks/measure_latency_data.py zoo-tuned` first")
    variants = sorted(set(at_budget["name"][at_budget["origin"] == "variant"]))
    return [m for m in list_models() if m in done] + variants


def _timers(spec, model: str, budget: int, repeat: int, min_repeat_ms: float, out: Path):
    """(NetworkTimers, tuning database hash) of ``model`` compiled into ``out`` with the budget's records."""
    from hwface.compile.artifact import compile_artifact
    from hwface.measure.engines import network_timers
    from hwface.tune import logs

    database, db_hash = logs.open_database(spec, path=logs.budget_dir(spec, budget))
    source = {"model": model}
    if "@" in model:  # a zoo variant (hwface.nas.variants): built from its arch spec
        from hwface.nas import export_spec
        from hwface.nas.variants import variant_spec

        out.mkdir(parents=True, exist_ok=True)
        source = {"onnx_path": export_spec(variant_spec(model), out.with_suffix(".onnx")).path}
    art = compile_artifact(out, spec.name, database=database, tuning_db_hash=db_hash, **source)
    return network_timers(art.directory, art.onnx_path, repeat, min_repeat_ms), db_hash
