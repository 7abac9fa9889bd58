"""How many threads TVM's runtime uses in this process.

TVM's CPU thread pool defaults to half the logical CPUs on x86 (it assumes every
core has two hyper-threads), so on a 2-vCPU machine a compiled network runs on
one thread while onnxruntime and PyTorch use two. hwface runs kernels with every
core the process may use unless ``TVM_NUM_THREADS`` says otherwise; the RPC device
server does the same (:mod:`hwface.rpc.device_server`).
"""

from __future__ import annotations

import os

ENV = "TVM_NUM_THREADS"


def usable_cores() -> int:
    """CPUs this process may run on: :func:`hwface.targets.host_cores`."""
    from hwface.targets import host_cores

    return host_cores()


def use_all_cores() -> int:
    """Set ``TVM_NUM_THREADS`` to :func:`usable_cores` unless already set; returns the thread count.

    Takes effect when TVM's thread pool starts, i.e. before this process first
    runs a parallel kernel.
    """
    os.environ.setdefault(ENV, str(usable_cores()))
    return int(os.environ[ENV])


def runtime_threads() -> int:
    """Threads TVM's runtime uses in this process (starts its thread pool)."""
    import tvm

    return int(tvm.get_global_func("runtime.NumThreads")())
