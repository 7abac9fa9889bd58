"""TVM's runtime thread count in hwface's processes."""

from __future__ import annotations

import subprocess
import sys

from hwface.measure.threads import usable_cores

CHILD = """
import os, sys
from hwface.measure.threads import use_all_cores, runtime_threads
print(use_all_cores(), runtime_threads())
"""


def _child(env_threads: str | None) -> tuple[int, int]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "TVM_NUM_THREADS"}
    if env_threads is not None:
        env["TVM_NUM_THREADS"] = env_threads
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120, check=True)
    asked, used = out.stdout.split()[-2:]
    return int(asked), int(used)


def test_runtime_uses_every_usable_core():
    assert _child(None) == (usable_cores(), usable_cores())


def test_an_explicit_thread_count_is_kept():
    assert _child("1") == (1, 1)
