"""Held-out networks: random arch specs measured end to end (with their kernels), never trained on.

Network ``i`` of a run is ``sample_arch(DEFAULT_SPACE, seed=base_seed + i)`` and is
stored as ``nas-<base_seed + i>`` with ``split = "heldout"``; a rerun skips the
networks already measured under today's fingerprint, so the measurement resumes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HELDOUT_SEED = 100_000


@dataclass
class HeldoutReport:
    """What a held-out run measured: networks wanted, already done, measured now, failed; drift-guard counts."""

    target: str
    regime: str
    wanted: int
    already_done: int = 0
    measured: int = 0
    failed: list[str] = field(default_factory=list)
    redone_batches: int = 0
    drifted_batches: int = 0


def heldout_name(seed: int) -> str:
    return f"nas-{seed}"


def measure_heldout(target: str = "host", regime: str = "default", n: int = 100, base_seed: int = HELDOUT_SEED,
                    tracker: str | None = None, key: str | None = None, repeat: int = 5, min_repeat_ms: float = 10,
                    progress: Callable[[str], None] | None = None) -> HeldoutReport:
    """Measure ``n`` held-out networks (default regime only here; the tuned regime needs per-network tuning).

    Parameters
    ----------
    target : str
    regime : str
        ``default``.
    n : int
        Networks wanted in total (a rerun measures the missing ones).
    base_seed : int
        Network ``i`` is ``sample_arch(seed=base_seed + i)``.
    repeat, min_repeat_ms
        Samples per kernel and end-to-end, and their minimum length (ms).
    """
    from hwface.errors import HwfaceError
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.latency.store import LatencyStore, db_path
    from hwface.measure.drift import DriftGuard
    from hwface.measure.profile import profile_model
    from hwface.nas import DEFAULT_SPACE, export_spec, sample_arch
    from hwface.targets import load_target

    if regime != "default":
        raise HwfaceError("held-out networks are measured here in the default regime only "
                          "(the tuned regime tunes each network first: not built yet)")
    say = progress or (lambda msg: None)
    spec = load_target(target)
    today = current_fingerprint(spec).digest()
    device_key = key or spec.rpc_key
    report = HeldoutReport(spec.name, regime, n)
    with LatencyStore(db_path(spec.name)) as db:
        todo = [s for s in range(base_seed, base_seed + n)
                if not db.network_done(heldout_name(s), regime, device_key, today)]
    report.already_done = n - len(todo)
    guard = DriftGuard(spec) if todo else None
    work = Path(tempfile.mkdtemp(prefix="hwface-heldout-"))
    for i, seed in enumerate(todo):
        arch = sample_arch(DEFAULT_SPACE, seed=seed)
        name = heldout_name(seed)
        say(f"[{report.already_done + i + 1}/{n}] {name}: exporting")
        try:
            path = export_spec(arch, work / f"{name}.onnx").path
            profile_model(onnx_path=path, target=spec, tracker=tracker, key=key, repeat=repeat,
                          min_repeat_ms=min_repeat_ms, store=True, regime=regime, split="heldout", name=name,
                          origin="nas", arch_spec=arch.to_dict(), guard=guard,
                          progress=lambda msg: None if msg.startswith("kernel ") else say(f"  {name}: {msg}"))
            report.measured += 1
        except HwfaceError as exc:
            report.failed.append(f"{name}: {exc}")
            say(f"  {name} failed: {exc}")
        report.redone_batches, report.drifted_batches = guard.redone, guard.drifted
    return report
