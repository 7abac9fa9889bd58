"""Measure a list of networks end to end and per kernel under one drift guard, skipping those already measured.

Used by :mod:`hwface.workflows.zoo_data` (the zoo) and :mod:`hwface.workflows.heldout`
(random arch specs); a rerun resumes, since a network measured under today's
fingerprint, regime and device key is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class NetworkRunReport:
    """Networks wanted, already measured under today's fingerprint, measured now, failed; drift-guard counts."""

    target: str
    regime: str
    wanted: int
    already_done: int = 0
    measured: int = 0
    failed: list[str] = field(default_factory=list)
    redone_batches: int = 0
    drifted_batches: int = 0


@dataclass(frozen=True)
class NetworkJob:
    """One network to measure: its stored name and the step that prepares it.

    ``prepare()`` exports (or tunes) the network and returns the
    :func:`~hwface.workflows.profile.profile_model` arguments; it runs only when
    the network is measured.
    """

    name: str
    prepare: Callable[[], dict[str, Any]]


def measure_networks(spec, regime: str, jobs: list[NetworkJob], progress: Callable[[str], None] | None = None,
                     repeat: int = 5, min_repeat_ms: float = 10, guard=None) -> NetworkRunReport:
    """Profile and store every job not yet measured, under one drift guard (``guard``, default a new one).

    ``prepare()`` is called only for the jobs that run. Arguments it returns
    (``regime`` or ``split``, say) override the defaults.
    """
    from hwface.errors import HwfaceError
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.latency.store import LatencyStore
    from hwface.measure.drift import DriftGuard
    from hwface.workflows.profile import profile_model

    say = progress or (lambda msg: None)
    today = current_fingerprint(spec).digest()
    with LatencyStore.for_reading(spec.name) as db:
        todo = [j for j in jobs if not db.network_done(j.name, regime, spec.rpc_key, today)]
    report = NetworkRunReport(spec.name, regime, len(jobs), already_done=len(jobs) - len(todo))
    guard = guard or (DriftGuard(spec) if todo else None)
    for i, job in enumerate(todo):
        say(f"[{report.already_done + i + 1}/{len(jobs)}] {job.name}")
        try:
            args = {"regime": regime, **job.prepare()}
            r = profile_model(target=spec, repeat=repeat, min_repeat_ms=min_repeat_ms, store=True,
                              name=job.name, guard=guard, **args,
                              progress=lambda msg: None if msg.startswith("kernel ") else say(f"  {job.name}: {msg}"))
            say(f"  {job.name}: {len(r.rows)} kernel calls, end to end {r.end_to_end.median_us / 1e3:.2f} ms, "
                f"sum/e2e {r.ratio:.3f}")
            report.measured += 1
        except HwfaceError as exc:
            report.failed.append(f"{job.name}: {exc}")
            say(f"  {job.name} failed: {exc}")
        report.redone_batches, report.drifted_batches = guard.redone, guard.drifted
    return report
