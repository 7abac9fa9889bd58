"""Running an artifact on a device over RPC: upload the ``.so``, run it, time it (unless emulated)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from hwface.errors import HwfaceError, error_line
from hwface.rpc.devices import DeviceLost, Session, connect

EMULATED_NOTE = "emulated: latency not meaningful"
T = TypeVar("T")


class MissingGPU(HwfaceError):
    """The artifact runs on a GPU (OpenCL) that the device does not have."""


class WrongArchitecture(HwfaceError):
    """A shared object built for another architecture than the device's."""


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


def call_with_deadline(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """Run ``fn`` in a worker thread and wait at most ``timeout_s`` seconds for it.

    A blocked RPC call cannot be interrupted from Python; after the deadline the
    caller gets :class:`DeviceLost` and the worker thread (a daemon) is abandoned.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=work, name=f"hwface-rpc {what}", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise DeviceLost(f"{what}: no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _emulated_by_target_files(key: str) -> bool:
    from hwface.targets import TargetError, list_targets, load_target

    for name in list_targets():
        try:
            spec = load_target(name)
        except TargetError:
            continue
        if spec.rpc_key == key and spec.emulated:
            return True
    return False


def check_architecture(so_path: Path, session: Session, info: dict[str, Any] | None) -> str:
    """Refuse ``so_path`` when the device reports another architecture; returns the ``.so``'s.

    Raises
    ------
    WrongArchitecture
    """
    from hwface.compile.elf import elf_machine

    arch = elf_machine(so_path)
    device_arch = (info or {}).get("machine")
    if device_arch and device_arch != arch:
        raise WrongArchitecture(
            f"{so_path} is built for {arch} but device {session.name} is {device_arch}: "
            f"compile it for a target of that device (e.g. --target linux-arm64 for aarch64 Linux)"
        )
    return arch


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
        emulated = bool(info["emulated"]) if info else _emulated_by_target_files(key)
        kind = str(artifact.manifest.target.get("kind", "llvm"))
        out, latency = call_with_deadline(
            lambda: _run_on(session, artifact.so_path, x, arch, timed and not emulated, kind),
            left(), f"running {artifact.so_path.name} on device {session.name}")
    finally:
        session.sess = None  # drop the session so that the server is free again
    return RemoteRunResult(outputs=out, latency=latency, device=session.name, emulated=emulated, device_info=info)


def device_of(session: Session, kind: str):
    """The device of the session that runs code of TVM target kind ``kind`` (``llvm``: the CPU).

    Raises
    ------
    MissingGPU
        ``kind`` is a GPU API (``opencl``, ...) that the device lacks or its TVM runtime was built without.
    """
    if kind == "llvm":
        return session.sess.cpu()
    try:
        dev = session.sess.device(kind, 0)
        present = bool(dev.exist)
    except Exception:  # TVM's runtime raises when it was built without that device API
        present = False
    if not present:
        raise MissingGPU(f"device {session.name} has no {kind} GPU, which this artifact's kernels run on: "
                         f"run it on a device that has one (its RPC server's TVM runtime built with {kind})")
    return dev


def _run_on(session: Session, so_path: Path, x: np.ndarray, arch: str, timed: bool, kind: str = "llvm"):
    import tvm
    from tvm import relax

    from hwface.compile.artifact import numpy_outputs
    from hwface.measure.timing import time_vm_main

    sess = session.sess
    dev = device_of(session, kind)
    remote_name = so_path.name
    try:
        sess.upload(str(so_path), remote_name)
    except Exception as exc:
        raise DeviceLost(f"device {session.name}: upload of {so_path.name} failed: {error_line(exc)}") from None
    try:
        lib = sess.load_module(remote_name)
    except Exception as exc:
        msg = error_line(exc)
        if _lost(msg):
            raise DeviceLost(f"device {session.name} dropped the session while loading {so_path.name}: {msg}") from None
        raise WrongArchitecture(
            f"device {session.name} could not load {so_path.name} (built for {arch}): {msg}") from None
    try:
        vm = relax.VirtualMachine(lib, dev)
        arg = tvm.runtime.tensor(x, dev)
        # set_input / invoke_stateful / get_outputs: a tuple of outputs cannot cross RPC as one value
        vm.set_input("main", arg)
        vm.invoke_stateful("main")
        out = numpy_outputs(vm.get_outputs("main"))
        latency = time_vm_main(vm, dev, [arg]) if timed else None
    except Exception as exc:
        msg = error_line(exc)
        if _lost(msg):
            raise DeviceLost(f"device {session.name} dropped the session while running {so_path.name} "
                             f"(server stopped or unreachable): {msg}") from None
        raise DeviceLost(f"device {session.name} failed while running {so_path.name}: {msg}") from None
    return out, latency


def _lost(msg: str) -> bool:
    low = msg.lower()
    return any(s in low for s in ("socket", "connection", "broken pipe", "closed", "rpcsessiontimeout", "eof", "kshutdown"))
