"""Every zoo network profiled (kernels and end to end) into the latency database, resumable.

In the ``default`` regime the kernels run TVM's default schedules; the zoo's
networks are training networks (``split = "train"``): their kernels train the
predictor and their end-to-end runs fit the per-call overhead.
"""

from __future__ import annotations

from typing import Callable

from hwface.workflows.networks import NetworkJob, NetworkRunReport, measure_networks


def measure_zoo(target: str = "host", regime: str = "default", models: list[str] | None = None,
                progress: Callable[[str], None] | None = None) -> NetworkRunReport:
    """Profile every zoo network (or ``models``) in ``regime`` (``default`` only here) and store it.

    Parameters
    ----------
    target : str
    regime : str
        ``default``: TVM's default schedules, no tuning records.
    models : list of str, optional
        Default: every zoo model.
    """
    from hwface.errors import HwfaceError
    from hwface.models import list_models
    from hwface.targets import load_target

    if regime != "default":
        raise HwfaceError("the zoo is measured here in the default regime only (the tuned regime needs the "
                          "networks tuned at one budget first)")
    jobs = [NetworkJob(m, lambda m=m: {"model": m}) for m in (models or list_models())]
    return measure_networks(load_target(target), regime, jobs, progress)
