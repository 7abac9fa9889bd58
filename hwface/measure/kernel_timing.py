"""Timing primitives on a device over RPC: a kernel library's functions one by one, and a linked artifact.

Kernels are compiled into one TIR library (each its own function, lowered as the
Relax build lowers it), linked for the device like an artifact, uploaded once and
timed with ``time_evaluator`` on random inputs of their argument shapes: one
warm-up call, then ``repeat`` samples of at least ``min_repeat_ms`` each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hwface.measure.timing import LatencyStats

KERNEL_REPEAT = 10
KERNEL_MIN_REPEAT_MS = 20


@dataclass(frozen=True)
class KernelSpec:
    """A function of a kernel library and the arguments it takes (inputs then outputs)."""

    name: str
    arg_shapes: tuple[tuple[int, ...], ...]
    arg_dtypes: tuple[str, ...]


def primfuncs(mod) -> dict[str, Any]:
    """PrimFuncs of a module by name."""
    import tvm

    return {gv.name_hint: f for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)}


def apply_database(fused, spec, database):
    """The fused module with tuning records applied, as :func:`hwface.compile.build.build` applies them."""
    import tvm
    from tvm import relax

    if database is None:
        return fused
    with spec.tvm_target(), database, tvm.transform.PassContext(opt_level=3):
        return relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(fused)


def build_kernel_library(funcs: dict[str, Any], spec, path: str | Path) -> Path:
    """Compile PrimFuncs (name -> PrimFunc) into one shared object for ``spec``, one function each.

    Linked like an artifact (:func:`hwface.compile.build.export_so`), so it loads on the device as is.
    """
    import tvm

    from hwface.compile.build import export_so

    mod = tvm.IRModule({name: f.with_attr("global_symbol", name) for name, f in funcs.items()})
    return export_so(tvm.compile(mod, target=spec.tvm_target()), path, spec)


def time_kernels(session, so_path: str | Path, kernels: Sequence[KernelSpec], repeat: int = KERNEL_REPEAT,
                 min_repeat_ms: float = KERNEL_MIN_REPEAT_MS, seed: int = 0,
                 progress: Callable[[str], None] | None = None,
                 loaded: dict[str, Any] | None = None) -> dict[str, LatencyStats]:
    """Upload a kernel library and time each function with ``time_evaluator`` (one warm-up call first).

    Parameters
    ----------
    session : hwface.rpc.devices.Session
    so_path : path
        Made by :func:`build_kernel_library`.
    kernels : sequence of KernelSpec
    repeat : int
        Samples per kernel.
    min_repeat_ms : float
        Each sample runs the kernel enough times to last at least this long, in ms.
    loaded : dict, optional
        Modules this session already loaded, by file name: a library found
        there is timed again without a new upload (overwriting a shared object
        the device has mapped would crash it). Filled on first use.

    Returns
    -------
    dict
        Kernel name -> LatencyStats (microseconds).
    """
    import tvm

    from hwface.errors import error_line
    from hwface.measure.remote_run import load_module
    from hwface.rpc.devices import DeviceLost

    sess = session.sess
    so_path = Path(so_path)
    lib = load_module(session, so_path, {} if loaded is None else loaded)
    dev = sess.cpu()
    rng = np.random.default_rng(seed)
    out: dict[str, LatencyStats] = {}
    for i, k in enumerate(kernels):
        if progress:
            progress(k.name)
        args = [tvm.runtime.tensor(_random(rng, s, d), dev) for s, d in zip(k.arg_shapes, k.arg_dtypes)]
        try:
            f = lib.get_function(k.name)
            f(*args)  # warm-up
            te = lib.time_evaluator(k.name, dev, number=1, repeat=repeat, min_repeat_ms=int(min_repeat_ms),
                                    cooldown_interval_ms=0)
            out[k.name] = LatencyStats.from_seconds(te(*args).results)
        except Exception as exc:
            raise DeviceLost(f"device {session.name} failed timing kernel {k.name}: {error_line(exc)}") from None
    return out


def time_artifact(session, so_path: str | Path, x: np.ndarray, repeat: int,
                  min_repeat_ms: float | None = None, loaded: dict[str, Any] | None = None) -> LatencyStats:
    """Upload a linked artifact ``.so``, run ``main`` once and time it (microseconds); ``loaded`` as for :func:`time_kernels`."""
    from hwface.measure.remote_run import load_module, run_main

    so_path = Path(so_path)
    module = load_module(session, so_path, {} if loaded is None else loaded)
    return run_main(session, module, x, so_path.name, outputs=False, repeat=repeat, min_repeat_ms=min_repeat_ms)[1]


def _random(rng, shape, dtype) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return rng.uniform(-1, 1, size=shape).astype(dtype)
    return rng.integers(0, 2, size=shape).astype(dtype)
