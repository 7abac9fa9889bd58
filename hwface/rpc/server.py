"""Starting an RPC server on this machine (hwface's device server) registered at a tracker."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from hwface.errors import HwfaceError
from hwface.rpc import procs
from hwface.rpc.devices import RegistrationWatch, check_key
from hwface.targets import parse_tracker

DEVICE_SERVER = Path(__file__).with_name("device_server.py")
READY_TIMEOUT_S = 60.0


@dataclass
class ServerProcess:
    """A running RPC server registered at a tracker.

    Attributes
    ----------
    key : str
    tracker : str
        ``HOST:PORT`` it registered at.
    host : str
        Address it binds.
    port : int
    proc : ManagedProcess
    """

    key: str
    tracker: str
    host: str
    port: int
    proc: procs.ManagedProcess

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        self.proc.stop()

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> "ServerProcess":
        """Wait until the tracker lists this server as free; on failure stop it and raise with its log."""
        try:
            procs.wait_until(RegistrationWatch(self.tracker, self.key, self.port).ready, timeout_s,
                             f"RPC server {self.key!r} on {self.address} registering at {self.tracker}",
                             proc=self.proc, poll_s=0.25)
        except HwfaceError:
            self.proc.stop()
            raise
        return self

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def local_runtime_env() -> tuple[dict[str, str], list[str]]:
    """Environment and ``--load-library`` for a runtime-only server from this venv's TVM.

    Runtime-only and without torch (:func:`hwface.rpc.procs.runtime_only_env`), it starts
    faster than a full TVM and behaves like a device; ``libtvm_runtime_extra.so`` holds the
    functions that MetaSchedule's runner calls (without it the runner fails).
    """
    import importlib.util

    spec = importlib.util.find_spec("tvm")
    if spec is None or not spec.submodule_search_locations:
        raise HwfaceError("TVM is not installed in this Python (pip install apache-tvm)")
    extra = Path(list(spec.submodule_search_locations)[0]) / "lib" / "libtvm_runtime_extra.so"
    env = procs.runtime_only_env()
    return env, [str(extra)] if extra.exists() else []


def start_server(tracker: str, key: str, host: str = procs.LOOPBACK, port: int | None = None,
                 python: Sequence[str] | str = sys.executable, env: Mapping[str, str] | None = None,
                 load_library: Sequence[str | os.PathLike] | None = None, log_dir: Path | None = None,
                 custom_addr: str | None = None, ready_timeout_s: float = READY_TIMEOUT_S,
                 wait: bool = True) -> ServerProcess:
    """Start hwface's device server (``tvm.exec.rpc_server`` plus ``hwface.device_info``) and wait
    until the tracker lists it as free.

    Parameters
    ----------
    tracker : str
        ``HOST:PORT`` of the tracker.
    key : str
        Device key to register under.
    host : str
        Address to bind (127.0.0.1 by default; others print a warning).
    port : int, optional
        TCP port; a free one when None.
    python : str or sequence of str
        Command that runs a Python with TVM (e.g. the emulated device's wrapper).
    env : mapping, optional
        Environment of the server. Default: this process's, runtime-only
        (see :func:`local_runtime_env`).
    load_library : sequence of paths, optional
        Extra libraries the server loads (``--load-library``); default: those of
        :func:`local_runtime_env` when ``env`` is None too, else none.
    log_dir : Path, optional
        Where ``server-<key>-<port>.log`` goes (a temporary directory by default).
    custom_addr : str, optional
        Address to report to the tracker instead of the one it sees.
    ready_timeout_s : float
        Seconds to wait for the registration.
    wait : bool
        Wait for the registration (else call :meth:`ServerProcess.wait_ready` later).

    Raises
    ------
    HwfaceError
        Malformed tracker address, or the server exits or does not register in time
        (the message carries its log).
    """
    parse_tracker(tracker)
    check_key(key)
    procs.warn_if_exposed(host, f"the RPC server for key {key!r}")
    chosen = port if port is not None else procs.free_port(procs.LOOPBACK if host in procs.WILDCARD_HOSTS else host)
    log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="hwface-rpc-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    if env is None:
        env, default_libs = local_runtime_env()
        load_library = default_libs if load_library is None else load_library
    cmd = [python] if isinstance(python, str) else list(python)
    cmd += [str(DEVICE_SERVER), "--host", host, "--port", str(chosen), "--port-end", str(chosen + 1),
            "--tracker", tracker, "--key", key]
    if load_library:
        cmd += ["--load-library", ":".join(str(p) for p in load_library)]
    if custom_addr:
        cmd += ["--custom-addr", custom_addr]
    proc = procs.spawn(cmd, log_path=log_dir / f"server-{key}-{chosen}.log", env=env, cwd=log_dir)
    server = ServerProcess(key=key, tracker=tracker, host=host, port=chosen, proc=proc)
    return server.wait_ready(ready_timeout_s) if wait else server
