"""Held-out networks: random arch specs measured end to end (with their kernels), never trained on.

Network ``i`` of a run is ``sample_arch(DEFAULT_SPACE, seed=base_seed + i)`` and is
stored as ``nas-<base_seed + i>`` with ``split = "heldout"``; a rerun skips the
networks already measured under today's fingerprint, so the measurement resumes.
In the tuned regime each network is first tuned at the budget
(:mod:`hwface.workflows.tuned`), in the same order, so the first ``n`` of a run
are the first ``n`` of a longer one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from hwface.workflows.networks import NetworkJob, NetworkRunReport, measure_networks
from hwface.workflows.tuned import TUNED_BUDGET, tune_at_budget

HELDOUT_SEED = 100_000


def heldout_name(seed: int) -> str:
    return f"nas-{seed}"


def _heldout_args(seed: int, work: Path) -> dict[str, Any]:
    from hwface.nas import DEFAULT_SPACE, export_spec, sample_arch

    arch = sample_arch(DEFAULT_SPACE, seed=seed)
    path = export_spec(arch, work / f"{heldout_name(seed)}.onnx").path
    return {"onnx_path": path, "split": "heldout", "origin": "nas", "arch_spec": arch.to_dict()}


def measure_heldout(target: str = "host", regime: str = "default", n: int = 100, base_seed: int = HELDOUT_SEED,
                    progress: Callable[[str], None] | None = None, budget: int = TUNED_BUDGET) -> NetworkRunReport:
    """Measure ``n`` held-out networks in ``regime``.

    Parameters
    ----------
    target : str
    regime : str
        ``default`` or ``tuned`` (each network tuned at ``budget`` first).
    n : int
        Networks wanted in total (a rerun measures the missing ones).
    base_seed : int
        Network ``i`` is ``sample_arch(seed=base_seed + i)``.
    budget : int
        The tuned regime's trials a kernel.
    """
    from hwface.errors import HwfaceError
    from hwface.targets import load_target

    if regime not in ("default", "tuned"):
        raise HwfaceError(f"held-out networks are measured in the default or tuned regime, not {regime!r}")
    spec = load_target(target)
    say = progress or (lambda msg: None)
    work = Path(tempfile.mkdtemp(prefix="hwface-heldout-"))

    def prepare(seed: int) -> dict[str, Any]:
        args = _heldout_args(seed, work)
        if regime == "tuned":
            tuned = tune_at_budget(spec, budget, lambda s: say(f"  {heldout_name(seed)}: {s}"),
                                   onnx_path=args["onnx_path"])
            args.update(tuned)
        return args

    jobs = [NetworkJob(heldout_name(s), lambda s=s: prepare(s)) for s in range(base_seed, base_seed + n)]
    return measure_networks(spec, regime, jobs, progress)
