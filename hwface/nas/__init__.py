"""NAS: arch specs (the papers' block grammar as JSON), their PyTorch networks, the zoo as specs, the search space.

Importing this package does not import torch; :func:`build`, :func:`zoo_spec` and
:func:`sample_arch` import it when called.
"""

from hwface.nas.build import build
from hwface.nas.export import export_spec
from hwface.nas.plan import PlanError, PlannedKernel, plan_kernels
from hwface.nas.space import DEFAULT_SPACE, SearchSpace, sample_arch, spec_madds
from hwface.nas.spec import MAX_BLOCKS, ArchSpec, ArchSpecError, HeadSpec, StageSpec, StemSpec, validate
from hwface.nas.zoo import ZOO_NOT_FITTING, zoo_spec, zoo_spec_names

__all__ = [
    "DEFAULT_SPACE", "MAX_BLOCKS", "ZOO_NOT_FITTING", "ArchSpec", "ArchSpecError", "HeadSpec", "PlanError",
    "PlannedKernel", "SearchSpace", "StageSpec", "StemSpec", "build", "export_spec", "plan_kernels", "sample_arch",
    "spec_madds", "validate", "zoo_spec", "zoo_spec_names",
]
