"""Zoo networks with one thing changed (:mod:`hwface.nas.variants`), tuned at the budget and measured, resumable.

Each variant is exported from its arch spec, tuned at the tuned regime's budget
into the zoo's shared budget logs (its unchanged kernels are the base network's,
tuned once), profiled end to end and per kernel under the drift guard, and stored
as a held-out network of origin ``variant`` (never trained on). The claims compare
it with its base (:mod:`hwface.claims.catalog`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from hwface.workflows.networks import NetworkJob, NetworkRunReport, measure_networks
from hwface.workflows.tuned import TUNED_BUDGET, tune_at_budget


def measure_variants(names: list[str], target: str = "host", progress: Callable[[str], None] | None = None,
                     budget: int = TUNED_BUDGET, guard=None) -> NetworkRunReport:
    """Tune each variant (``<base>@<change>``) at ``budget``, measure it in the tuned regime and store it.

    A rerun skips the variants measured under today's fingerprint.
    """
    from hwface.nas import export_spec
    from hwface.nas.variants import variant_spec
    from hwface.targets import load_target

    spec = load_target(target)
    say = progress or (lambda msg: None)
    for name in names:
        variant_spec(name)  # a bad name fails before anything is measured
    work = Path(tempfile.mkdtemp(prefix="hwface-variants-"))

    def prepare(name: str) -> dict[str, Any]:
        arch = variant_spec(name)
        path = export_spec(arch, work / f"{name.replace('@', '_').replace('=', '-')}.onnx").path
        tuned = tune_at_budget(spec, budget, lambda s: say(f"  {name}: {s}"), onnx_path=path)
        return {"onnx_path": path, "split": "heldout", "origin": "variant", "arch_spec": arch.to_dict(), **tuned}

    jobs = [NetworkJob(n, lambda n=n: prepare(n)) for n in names]
    return measure_networks(spec, "tuned", jobs, progress, guard=guard)
