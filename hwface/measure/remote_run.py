"""Running an artifact on a device over RPC: upload the ``.so``, run it, time it (unless emulated)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwface.errors import error_line
from hwface.rpc.devices import DeviceLost, Session, connect
from hwface.rpc.remote import (WrongArchitecture, call_with_deadline, check_architecture, device_of,
                               emulated_by_target_files)

EMULATED_NOTE = "emulated: latency not meaningful"


@dataclass(frozen=True)
class RemoteRunResult:
    """One run of an artifact on a device.

    Attributes
    ----------
    outputs : tuple of numpy.ndarray
        Every output of ``main``, in the manifest's order (:attr:`output`: the first).
    latency : hwface.measure.timing.LatencyStats or None
        End-to-end latency (microseconds); None on an emulated device or when not timed.
    device : str
        ``key@host:port`` of the server that ran it.
    emulated : bool
        True on an emulated device: timings there mean nothing and are never reported.
    device_info : dict or None
        What the device server says about itself (machine, TVM version, ...).
    """

    outputs: tuple[np.ndarray, ...]
    latency: Any
    device: str
    emulated: bool = False
    device_info: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def output(self) -> np.ndarray:
        """The first output (the embedding of a zoo network)."""
        return self.outputs[0]


def run_remote(artifact_dir: str | Path, tracker: str, key: str | None = None,
               input_path: str | Path | None = None, timeout_s: float = 120.0, timed: bool = True,
               x: np.ndarray | None = None) -> RemoteRunResult:
    """Upload an artifact's ``.so`` to a device, run ``main`` once and (unless emulated) time it.

    Parameters
    ----------
    artifact_dir : path
        Made by ``hwface compile`` (its sha256 is checked first).
    tracker : str
        ``HOST:PORT`` of the tracker.
    key : str, optional
        Device key; default: the ``rpc_key`` of the artifact's target.
    input_path : path, optional
        ``.npy`` input; default: the reproducible example input.
    timeout_s : float
        Bound on the whole remote part (waiting for a free device, upload, run,
        timing), in seconds; the server also ends the session after it.
    timed : bool
        Time repeated runs (skipped on emulated devices).
    x : numpy.ndarray, optional
        Input array (instead of ``input_path``).

    Returns
    -------
    RemoteRunResult

    Raises
    ------
    TrackerUnreachable, NoDevice
        Bad tracker or key.
    WrongArchitecture
        The ``.so`` is built for another architecture than the device's.
    DeviceLost
        The device dropped the session or did not answer within ``timeout_s``
        (the message names it).
    """
    import time

    from hwface.compile.artifact import load_artifact
    from hwface.measure.local_run import load_input

    artifact = load_artifact(artifact_dir)
    if key is None:
        from hwface.targets import load_target

        key = load_target(artifact.manifest.target_name).rpc_key
    if x is None:
        x = load_input(artifact, input_path)
    deadline = time.monotonic() + timeout_s
    session = connect(tracker, key, timeout_s=timeout_s, session_timeout_s=timeout_s)

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    try:
        info = call_with_deadline(session.device_info, left(), f"device {session.name}")
        arch = check_architecture(artifact.so_path, session, info)
        emulated = bool(info["emulated"]) if info else emulated_by_target_files(key)
        kind = str(artifact.manifest.target.get("kind", "llvm"))
        out, latency = call_with_deadline(
            lambda: _run_on(session, artifact.so_path, x, arch, timed and not emulated, kind),
            left(), f"running {artifact.so_path.name} on device {session.name}")
    finally:
        session.sess = None  # drop the session so that the server is free again
    return RemoteRunResult(outputs=out, latency=latency, device=session.name, emulated=emulated, device_info=info)


def _run_on(session: Session, so_path: Path, x: np.ndarray, arch: str, timed: bool, kind: str = "llvm"):
    dev = device_of(session, kind)  # before loading: an OpenCL module fails to load where OpenCL is missing
    module = load_module(session, so_path, arch=arch)
    return run_main(session, module, x, so_path.name, dev=dev, timed=timed)


def load_module(session: Session, so_path: Path, loaded: dict[str, Any] | None = None, arch: str | None = None):
    """``so_path`` uploaded to the device of ``session`` and loaded there.

    Parameters
    ----------
    loaded : dict, optional
        Modules already loaded in this session, by file name: reused, and the new one added.
    arch : str, optional
        What the file was built for: a load failure that is not a lost session then
        raises :class:`WrongArchitecture` naming it.
    """
    if loaded is not None and so_path.name in loaded:
        return loaded[so_path.name]
    try:
        session.sess.upload(str(so_path), so_path.name)
    except Exception as exc:
        raise DeviceLost(f"device {session.name}: upload of {so_path.name} failed: {error_line(exc)}") from None
    try:
        module = session.sess.load_module(so_path.name)
    except Exception as exc:
        msg = error_line(exc)
        if _lost(msg):
            raise DeviceLost(f"device {session.name} dropped the session while loading {so_path.name}: {msg}") from None
        if arch is not None:
            raise WrongArchitecture(
                f"device {session.name} could not load {so_path.name} (built for {arch}): {msg}") from None
        raise DeviceLost(f"device {session.name} could not load {so_path.name}: {msg}") from None
    if loaded is not None:
        loaded[so_path.name] = module
    return module


def run_main(session: Session, module, x: np.ndarray, name: str, dev=None, outputs: bool = True,
             timed: bool = True, repeat: int | None = None, min_repeat_ms: float | None = None):
    """Run a loaded artifact's ``main`` on ``x`` once, then (``timed``) time it.

    Parameters
    ----------
    name : str
        The artifact's file name, for messages.
    dev : tvm.runtime.Device, optional
        Where ``main`` runs (:func:`hwface.rpc.remote.device_of`); default the session's CPU.
    repeat, min_repeat_ms : optional
        Timing samples and each one's least duration (ms); default :mod:`hwface.measure.timing`'s.

    Returns
    -------
    (tuple of numpy.ndarray or None, hwface.measure.timing.LatencyStats or None)
        The outputs (None unless ``outputs``) and the latency in microseconds (None unless ``timed``).
    """
    import tvm
    from tvm import relax

    from hwface.compile.artifact import numpy_outputs
    from hwface.measure.timing import MIN_REPEAT_MS, REPEAT, time_vm_main

    dev = session.sess.cpu() if dev is None else dev
    try:
        vm = relax.VirtualMachine(module, dev)
        arg = tvm.runtime.tensor(x, dev)
        # set_input / invoke_stateful / get_outputs: a tuple of outputs cannot cross RPC as one value
        vm.set_input("main", arg)
        vm.invoke_stateful("main")
        out = numpy_outputs(vm.get_outputs("main")) if outputs else None
        latency = None
        if timed:
            latency = time_vm_main(vm, dev, [arg], repeat=repeat or REPEAT,
                                   min_repeat_ms=int(min_repeat_ms or MIN_REPEAT_MS))
    except Exception as exc:
        msg = error_line(exc)
        if _lost(msg):
            raise DeviceLost(f"device {session.name} dropped the session while running {name} "
                             f"(server stopped or unreachable): {msg}") from None
        raise DeviceLost(f"device {session.name} failed while running {name}: {msg}") from None
    return out, latency


def _lost(msg: str) -> bool:
    low = msg.lower()
    return any(s in low for s in ("socket", "connection", "broken pipe", "closed", "rpcsessiontimeout", "eof", "kshutdown"))
