"""Random arch specs measured end to end (with their kernels): held-out networks, and training networks.

Network ``i`` of a run is ``sample_arch(DEFAULT_SPACE, seed=base + i)`` and is
stored as ``nas-<base + i>``. Each split has its own seeds (:data:`SPLIT_SEEDS`),
so no network is ever in both:

- ``heldout`` (seeds from 100,000): never trained on; the predictor is judged on them.
- ``train`` (seeds from 200,000): their kernel rows train the predictor and their
  end-to-end runs fit the per-call overhead. The default regime has the zoo for
  that; the tuned regime's zoo networks are held out (the claims compare them),
  so its training networks are random specs.

A rerun skips the networks already measured under today's fingerprint, so the
measurement resumes. In the tuned regime each network is first tuned at the
budget (:mod:`hwface.workflows.tuned`), in the same order, so the first ``n`` of
a run are the first ``n`` of a longer one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from hwface.workflows.networks import NetworkJob, NetworkRunReport, measure_networks
from hwface.workflows.tuned import TUNED_BUDGET, tune_at_budget

SPLIT_SEEDS = {"heldout": 100_000, "train": 200_000}


def heldout_name(seed: int) -> str:
    """The stored name of the random arch spec of ``seed`` (whichever split its seed belongs to)."""
    return f"nas-{seed}"


def _spec_args(seed: int, split: str, work: Path) -> dict[str, Any]:
    from hwface.nas import DEFAULT_SPACE, export_spec, sample_arch

    arch = sample_arch(DEFAULT_SPACE, seed=seed)
    path = export_spec(arch, work / f"{heldout_name(seed)}.onnx").path
    return {"onnx_path": path, "split": split, "origin": "nas", "arch_spec": arch.to_dict()}


def measure_random_networks(target: str = "host", regime: str = "default", n: int = 100, split: str = "heldout",
                            progress: Callable[[str], None] | None = None,
                            budget: int = TUNED_BUDGET) -> NetworkRunReport:
    """Measure ``n`` random arch specs of ``split`` in ``regime``.

    Parameters
    ----------
    target : str
    regime : str
        ``default`` or ``tuned`` (each network tuned at ``budget`` first).
    n : int
        Networks wanted in total (a rerun measures the missing ones).
    split : str
        ``heldout`` or ``train``: network ``i`` is ``sample_arch(seed=SPLIT_SEEDS[split] + i)``.
    budget : int
        The tuned regime's trials a kernel.
    """
    from hwface.errors import HwfaceError
    from hwface.targets import load_target

    if regime not in ("default", "tuned"):
        raise HwfaceError(f"random networks are measured in the default or tuned regime, not {regime!r}")
    if split not in SPLIT_SEEDS:
        raise HwfaceError(f"unknown split {split!r}: choose from {', '.join(SPLIT_SEEDS)}")
    spec = load_target(target)
    say = progress or (lambda msg: None)
    work = Path(tempfile.mkdtemp(prefix=f"hwface-{split}-"))

    def prepare(seed: int) -> dict[str, Any]:
        args = _spec_args(seed, split, work)
        if regime == "tuned":
            tuned = tune_at_budget(spec, budget, lambda s: say(f"  {heldout_name(seed)}: {s}"),
                                   onnx_path=args["onnx_path"])
            args.update(tuned)
        return args

    base = SPLIT_SEEDS[split]
    jobs = [NetworkJob(heldout_name(s), lambda s=s: prepare(s)) for s in range(base, base + n)]
    return measure_networks(spec, regime, jobs, progress)


def measure_heldout(target: str = "host", regime: str = "default", n: int = 100,
                    progress: Callable[[str], None] | None = None, budget: int = TUNED_BUDGET) -> NetworkRunReport:
    """Measure ``n`` held-out networks in ``regime`` (:func:`measure_random_networks` of the ``heldout`` split)."""
    return measure_random_networks(target, regime, n, "heldout", progress, budget)
