"""MetaSchedule's tensor intrinsics for hwface's CPU targets only, without parsing CUDA's.

Every ``TuneContext`` first imports ``tvm.s_tir.tensor_intrin``, whose package
``__init__`` parses some 250 TVMScript intrinsics for CUDA, ROCm, Metal,
Hexagon, x86, Arm and RISC-V. The parser calls ``inspect.stack()`` for each, so
this costs 12-20 s per process on this machine (more under pytest, whose stacks
are deep), once for every ``hwface tune`` and every worker that builds. hwface's
targets are LLVM CPUs (x86 and AArch64) and OpenCL GPUs: only the x86 and Arm
dot-product intrinsics (used by MetaSchedule's int8 rules) can apply.
:func:`register_cpu_intrinsics` registers those and marks the package as
imported, so MetaSchedule's own import is a no-op. A module that needs another
family can still import it by name (``tvm.s_tir.tensor_intrin.cuda``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

PACKAGE = "tvm.s_tir.tensor_intrin"
# The families hwface's targets can use; dot_product_common is what both build on.
CPU_FAMILIES = ("dot_product_common", "x86", "arm_cpu")


def register_cpu_intrinsics() -> None:
    """Register the x86 and Arm intrinsics and stand in for the package (idempotent; about 1 s the first time)."""
    if PACKAGE not in sys.modules:
        spec = importlib.util.find_spec(PACKAGE)
        sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)  # its __init__ is never run
    for family in CPU_FAMILIES:
        importlib.import_module(f"{PACKAGE}.{family}")
