"""Every zoo network profiled (kernels and end to end) into the latency database, resumable.

In the ``default`` regime the kernels run TVM's default schedules; the zoo's
networks are training networks (``split = "train"``): their kernels train the
predictor and their end-to-end runs fit the per-call overhead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class ZooReport:
    """Zoo networks wanted, already measured under today's fingerprint, measured now, failed."""

    target: str
    regime: str
    wanted: int
    already_done: int = 0
    measured: int = 0
    failed: list[str] = field(default_factory=list)
    redone_batches: int = 0
    drifted_batches: int = 0


def measure_zoo(target: str = "host", regime: str = "default", models: list[str] | None = None,
                repeat: int = 5, min_repeat_ms: float = 10,
                progress: Callable[[str], None] | None = None) -> ZooReport:
    """Profile every zoo network (or ``models``) in ``regime`` (``default`` only here) and store it.

    Parameters
    ----------
    target : str
    regime : str
        ``default``: TVM's default schedules, no tuning records.
    models : list of str, optional
        Default: every zoo model.
    repeat, min_repeat_ms
        Samples per kernel and end-to-end and their minimum length (ms).
    """
    from hwface.errors import HwfaceError
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.latency.store import LatencyStore, db_path
    from hwface.measure.drift import DriftGuard
    from hwface.measure.profile import profile_model
    from hwface.models import list_models
    from hwface.targets import load_target

    if regime != "default":
        raise HwfaceError("the zoo is measured here in the default regime only (the tuned regime needs the "
                          "networks tuned at one budget first)")
    say = progress or (lambda msg: None)
    spec = load_target(target)
    names = models or list_models()
    today = current_fingerprint(spec).digest()
    with LatencyStore(db_path(spec.name)) as db:
        todo = [m for m in names if not db.network_done(m, regime, spec.rpc_key, today)]
    report = ZooReport(spec.name, regime, len(names), already_done=len(names) - len(todo))
    guard = DriftGuard(spec) if todo else None
    for i, model in enumerate(todo):
        say(f"[{report.already_done + i + 1}/{len(names)}] {model}")
        try:
            r = profile_model(model=model, target=spec, repeat=repeat, min_repeat_ms=min_repeat_ms, store=True,
                              regime=regime, guard=guard,
                              progress=lambda msg: None if msg.startswith("kernel ") else say(f"  {model}: {msg}"))
            say(f"  {model}: {len(r.rows)} kernel calls, end to end {r.end_to_end.median_us / 1e3:.2f} ms, "
                f"sum/e2e {r.ratio:.3f}")
            report.measured += 1
        except HwfaceError as exc:
            report.failed.append(f"{model}: {exc}")
            say(f"  {model} failed: {exc}")
        report.redone_batches, report.drifted_batches = guard.redone, guard.drifted
    return report
