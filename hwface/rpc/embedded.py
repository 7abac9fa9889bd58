"""The embedded default: a private tracker and host RPC server(s) on free loopback ports.

A command that needs a device for the ``host`` target and was given no tracker uses
:func:`embedded_device`; everything it starts is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from hwface.rpc import procs


@dataclass(frozen=True)
class DeviceEndpoint:
    """Where to reach a device: a tracker and a key.

    Attributes
    ----------
    tracker_host : str
    tracker_port : int
    key : str
    emulated : bool
        True when the device is emulated (timings mean nothing).
    """

    tracker_host: str
    tracker_port: int
    key: str
    emulated: bool = False

    @property
    def tracker(self) -> str:
        """``HOST:PORT``."""
        return f"{self.tracker_host}:{self.tracker_port}"


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt so that ``finally`` clean-up runs."""
    def _raise(signum, frame):
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def embedded_device(key: str = "host", n_servers: int = 1, log_dir: Path | None = None) -> Iterator[DeviceEndpoint]:
    """Start a private tracker and ``n_servers`` host RPC servers on loopback; stop them on exit.

    Parameters
    ----------
    key : str
        Key the servers register under.
    n_servers : int
        Number of host servers (jobs that can run at once).
    log_dir : Path, optional
        Keep the logs there (default: a temporary directory, removed on exit).

    Yields
    ------
    DeviceEndpoint
    """
    from hwface.rpc.server import start_server
    from hwface.rpc.tracker import start_tracker

    own_logs = log_dir is None
    logs = Path(tempfile.mkdtemp(prefix="hwface-embedded-")) if own_logs else Path(log_dir)
    started: list = []
    try:
        with sigterm_as_interrupt():
            # start everything at once (each process spends seconds importing TVM), then wait
            tracker = start_tracker(procs.LOOPBACK, log_dir=logs, wait=False)
            started.append(tracker)
            for _ in range(n_servers):
                started.append(start_server(tracker.address, key, procs.LOOPBACK, log_dir=logs, wait=False))
            for p in started:
                p.wait_ready()
            yield DeviceEndpoint(procs.LOOPBACK, tracker.port, key)
    finally:
        procs.stop_all(started)
        if own_logs:
            shutil.rmtree(logs, ignore_errors=True)


@contextlib.contextmanager
def device_for(target, tracker: str | None = None) -> Iterator[DeviceEndpoint]:
    """The device to use for ``target`` (a :class:`~hwface.targets.TargetSpec`).

    A given tracker (or the target file's) is used as it is. Without one, the host
    target gets :func:`embedded_device`, and an emulated target gets a private
    tracker with an emulated server (:func:`hwface.rpc.emulate.emulated_device`);
    any other target is an error, since hwface cannot start its device.
    """
    from hwface.errors import HwfaceError
    from hwface.targets import parse_tracker

    tracker = tracker or target.tracker
    if tracker:
        host, port = parse_tracker(tracker)
        yield DeviceEndpoint(host, port, target.rpc_key, emulated=target.emulated)
    elif target.emulated:
        from hwface.rpc.emulate import emulated_device

        with emulated_device(key=target.rpc_key) as ep:
            yield ep
    elif target.is_host:
        with embedded_device(key=target.rpc_key) as ep:
            yield ep
    else:
        raise HwfaceError(f"target {target.name} needs a device: pass --tracker HOST:PORT of a tracker "
                          f"where a {target.rpc_key!r} server is registered")
