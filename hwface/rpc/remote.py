"""What running code on an RPC device needs: bounded calls, the device's architecture and GPU, their errors.

Running a whole artifact there is :func:`hwface.measure.remote_run.run_remote`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

from hwface.errors import HwfaceError
from hwface.rpc.devices import DeviceLost, Session

T = TypeVar("T")


class MissingGPU(HwfaceError):
    """The artifact runs on a GPU (OpenCL) that the device does not have."""


class WrongArchitecture(HwfaceError):
    """A shared object built for another architecture than the device's."""


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


def emulated_by_target_files(key: str) -> bool:
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
