"""Starting a TVM RPC tracker (``tvm.exec.rpc_tracker``) as a process group hwface owns."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hwface.errors import HwfaceError
from hwface.rpc import procs
from hwface.rpc.devices import TrackerUnreachable, tracker_summary

READY_TIMEOUT_S = 30.0


@dataclass
class TrackerProcess:
    """A running tracker.

    Attributes
    ----------
    host : str
        Address it binds.
    port : int
    proc : ManagedProcess
    """

    host: str
    port: int
    proc: procs.ManagedProcess

    @property
    def address(self) -> str:
        """``HOST:PORT`` for clients and servers (loopback when it binds every interface)."""
        host = procs.LOOPBACK if self.host in procs.WILDCARD_HOSTS else self.host
        return f"{host}:{self.port}"

    def stop(self) -> None:
        self.proc.stop()

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> "TrackerProcess":
        """Wait until the tracker answers; on failure stop it and raise :class:`HwfaceError` with its log."""
        def answers() -> bool:
            try:
                tracker_summary(self.address, timeout_s=1.0)
                return True
            except TrackerUnreachable:
                return False

        try:
            procs.wait_until(answers, timeout_s, f"RPC tracker on {self.host}:{self.port}", proc=self.proc)
        except HwfaceError:
            self.proc.stop()
            raise
        return self

    def __enter__(self) -> "TrackerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_tracker(host: str = procs.LOOPBACK, port: int | None = None, log_dir: Path | None = None,
                  python: str = sys.executable, ready_timeout_s: float = READY_TIMEOUT_S,
                  wait: bool = True) -> TrackerProcess:
    """Start a tracker bound to exactly ``host:port`` and wait until it answers.

    Parameters
    ----------
    host : str
        Address to bind (127.0.0.1 by default; others print a warning).
    port : int, optional
        TCP port; a free one when None.
    log_dir : Path, optional
        Where ``tracker-<port>.log`` goes (a temporary directory by default).
    python : str
        Interpreter with TVM and tornado.
    ready_timeout_s : float
        Seconds to wait for the tracker to answer.
    wait : bool
        Wait until it answers (else call :meth:`TrackerProcess.wait_ready` later).

    Raises
    ------
    HwfaceError
        The port is taken or the tracker does not come up (the message carries its log).
    """
    procs.warn_if_exposed(host, "the RPC tracker")
    chosen = port if port is not None else procs.free_port(procs.LOOPBACK if host in procs.WILDCARD_HOSTS else host)
    log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="hwface-rpc-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "tvm.exec.rpc_tracker", "--host", host, "--port", str(chosen),
           "--port-end", str(chosen + 1)]
    # the tracker needs tvm.rpc and tornado, not the compiler library or torch
    proc = procs.spawn(cmd, log_path=log_dir / f"tracker-{chosen}.log", env=procs.runtime_only_env())
    tracker = TrackerProcess(host=host, port=chosen, proc=proc)
    return tracker.wait_ready(ready_timeout_s) if wait else tracker
