"""Held-out networks: random arch specs measured end to end (with their kernels), never trained on.

Network ``i`` of a run is ``sample_arch(DEFAULT_SPACE, seed=base_seed + i)`` and is
stored as ``nas-<base_seed + i>`` with ``split = "heldout"``; a rerun skips the
networks already measured under today's fingerprint, so the measurement resumes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from hwface.workflows.networks import NetworkJob, NetworkRunReport, measure_networks

HELDOUT_SEED = 100_000


def heldout_name(seed: int) -> str:
    return f"nas-{seed}"


def _heldout_args(seed: int, work: Path) -> dict[str, Any]:
    from hwface.nas import DEFAULT_SPACE, export_spec, sample_arch

    arch = sample_arch(DEFAULT_SPACE, seed=seed)
    path = export_spec(arch, work / f"{heldout_name(seed)}.onnx").path
    return {"onnx_path": path, "split": "heldout", "origin": "nas", "arch_spec": arch.to_dict()}


def measure_heldout(target: str = "host", regime: str = "default", n: int = 100, base_seed: int = HELDOUT_SEED,
                    progress: Callable[[str], None] | None = None) -> NetworkRunReport:
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
    """
    from hwface.errors import HwfaceError
    from hwface.targets import load_target

    if regime != "default":
        raise HwfaceError("held-out networks are measured here in the default regime only "
                          "(the tuned regime tunes each network first: not built yet)")
    work = Path(tempfile.mkdtemp(prefix="hwface-heldout-"))
    jobs = [NetworkJob(heldout_name(s), lambda s=s: _heldout_args(s, work)) for s in range(base_seed, base_seed + n)]
    return measure_networks(load_target(target), regime, jobs, progress)
