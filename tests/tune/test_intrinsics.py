"""Only the CPU intrinsics are registered, and MetaSchedule's own import of the package no longer parses CUDA's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

PROBE = """
import sys
from tvm.s_tir import TensorIntrin
from hwface.tune.intrinsics import register_cpu_intrinsics
register_cpu_intrinsics()
register_cpu_intrinsics()  # idempotent
import tvm.s_tir.tensor_intrin  # what every TuneContext does: now a no-op
from tvm.s_tir import meta_schedule as ms
ms.TuneContext(target="llvm")
for name in ("dot_16x4_vnni", "dot_16x4_avx512", "dot_4x4_i8i8s32_sdot", "dot_4x4_u8u8u32_udot"):
    assert TensorIntrin.get(name) is not None, name
assert "tvm.s_tir.tensor_intrin.cuda" not in sys.modules
assert TensorIntrin.get("wmma_sync_16x16x16_f16f16f32", allow_missing=True) is None
import tvm.s_tir.tensor_intrin.cuda  # another family by name still works
assert TensorIntrin.get("wmma_sync_16x16x16_f16f16f32") is not None
print("ok")
"""


@pytest.mark.slow  # tunes with every intrinsic rule
def test_cpu_intrinsics_are_registered_and_cuda_is_not_parsed():
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]
