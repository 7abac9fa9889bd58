"""Talking to a tracker: what devices it has (:func:`list_devices`) and a session on one (:func:`connect`).

The tracker protocol is spoken here with bounded socket timeouts, instead of through
``tvm.rpc.TrackerSession`` whose connect retries for 60 s and whose ``request``
waits forever for a busy key.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass
from typing import Any

from hwface.errors import HwfaceError, error_line
from hwface.targets import parse_tracker

RPC_TRACKER_MAGIC = 0x2F271
# tvm.rpc.base.TrackerCode
_SUCCESS, _REQUEST, _SUMMARY = 0, 4, 6


class TrackerUnreachable(HwfaceError):
    """No tracker answers at the given address."""


class NoDevice(HwfaceError):
    """The tracker has no server under the requested key, or none became free in time."""


class DeviceLost(HwfaceError):
    """A device dropped a session (server killed, network gone) or did not answer in time."""


@dataclass(frozen=True)
class DeviceStatus:
    """One key at a tracker.

    Attributes
    ----------
    key : str
    total : int
        Servers registered under the key.
    free : int
        Servers not in a session.
    pending : int
        Clients waiting for a server.
    addresses : tuple of str
        ``HOST:PORT`` of each registered server.
    """

    key: str
    total: int
    free: int
    pending: int
    addresses: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "total": self.total, "free": self.free, "pending": self.pending,
                "addresses": list(self.addresses)}


def _as_addr(tracker: str | tuple[str, int]) -> tuple[str, int]:
    return parse_tracker(tracker) if isinstance(tracker, str) else (tracker[0], int(tracker[1]))


def _fmt(addr: tuple[str, int]) -> str:
    return f"{addr[0]}:{addr[1]}"


def _recvall(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return bytes(buf)


def _send(sock: socket.socket, data: Any) -> None:
    raw = json.dumps(data).encode()
    sock.sendall(struct.pack("<i", len(raw)) + raw)


def _recv(sock: socket.socket) -> Any:
    size = struct.unpack("<i", _recvall(sock, 4))[0]
    return json.loads(_recvall(sock, size).decode())


def open_tracker(tracker: str | tuple[str, int], timeout_s: float = 5.0) -> socket.socket:
    """A socket to the tracker, past the handshake, with ``timeout_s`` on every operation.

    Raises
    ------
    TrackerUnreachable
        Nothing listens there, it does not answer, or it is not a TVM RPC tracker.
    """
    addr = _as_addr(tracker)
    try:
        sock = socket.create_connection(addr, timeout=timeout_s)
    except OSError as exc:
        raise TrackerUnreachable(f"cannot reach the RPC tracker at {_fmt(addr)}: {exc.strerror or exc}") from None
    try:
        sock.sendall(struct.pack("<i", RPC_TRACKER_MAGIC))
        magic = struct.unpack("<i", _recvall(sock, 4))[0]
    except (OSError, ConnectionError) as exc:
        sock.close()
        raise TrackerUnreachable(f"{_fmt(addr)} does not answer as an RPC tracker: {exc}") from None
    if magic != RPC_TRACKER_MAGIC:
        sock.close()
        raise TrackerUnreachable(f"{_fmt(addr)} is not a TVM RPC tracker")
    return sock


def tracker_summary(tracker: str | tuple[str, int], timeout_s: float = 5.0) -> dict[str, Any]:
    """The tracker's raw summary: ``{"queue_info": {key: {free, pending}}, "server_info": [...]}``."""
    sock = open_tracker(tracker, timeout_s)
    try:
        _send(sock, [_SUMMARY])
        reply = _recv(sock)
    except (OSError, ConnectionError, ValueError) as exc:
        raise TrackerUnreachable(f"RPC tracker at {_fmt(_as_addr(tracker))} failed to answer: {exc}") from None
    finally:
        sock.close()
    if not isinstance(reply, list) or reply[0] != _SUCCESS:
        raise TrackerUnreachable(f"RPC tracker at {_fmt(_as_addr(tracker))} gave an invalid summary: {reply!r}")
    return reply[1]


def devices_under(tracker: str | tuple[str, int], key: str, timeout_s: float = 5.0) -> int:
    """Number of servers registered under ``key`` at the tracker (0 when none)."""
    return next((d.total for d in list_devices(tracker, timeout_s) if d.key == key), 0)


def check_key(key: str) -> None:
    """Refuse a device key a tracker cannot take: empty, or with spaces or ':'."""
    if not key or any(c.isspace() or c == ":" for c in key):
        raise HwfaceError(f"invalid device key {key!r}: use a non-empty name without spaces or ':'")


def start_hint(key: str) -> str:
    """What to start so that a device registers under ``key`` (the end of a one-line error)."""
    return (f"start a tracker (`hwface rpc tracker`) and a device under key {key!r} (TVM's Android RPC app on a "
            f"phone, `hwface rpc server --key {key}` on a board, or `hwface device bootstrap` over SSH), "
            f"or rehearse on the emulated device with --key arm64-qemu")


def require_device(tracker: str | tuple[str, int], key: str) -> int:
    """Number of servers under ``key`` at the tracker, at least 1.

    Raises
    ------
    TrackerUnreachable, NoDevice
        With :func:`start_hint`'s advice, when no tracker answers or no server is under ``key``.
    """
    try:
        listed = list_devices(tracker)
    except TrackerUnreachable as exc:
        raise TrackerUnreachable(f"{exc}: {start_hint(key)}") from None
    total = next((d.total for d in listed if d.key == key), 0)
    if total == 0:
        known = ", ".join(d.key for d in listed) or "none"
        raise NoDevice(f"no device under key {key!r} at tracker {_fmt(_as_addr(tracker))} (keys: {known}): "
                       f"{start_hint(key)}")
    return total


def list_devices(tracker: str | tuple[str, int], timeout_s: float = 5.0) -> list[DeviceStatus]:
    """Per key: servers registered (total), free, and clients pending, sorted by key.

    Parameters
    ----------
    tracker : str or (host, port)
        ``HOST:PORT`` of the tracker.
    timeout_s : float
        Bound on connecting and on the answer, in seconds.

    Raises
    ------
    TrackerUnreachable
    """
    data = tracker_summary(tracker, timeout_s)
    addrs: dict[str, list[str]] = {}
    for item in data.get("server_info", []):
        key = str(item.get("key", ""))
        if key.startswith("server:"):
            host, port = item.get("addr", [None, None])
            addrs.setdefault(key.split(":", 1)[1], []).append(f"{host}:{port}")
    queue = data.get("queue_info", {})
    rows = []
    for key in sorted(set(addrs) | set(queue)):
        q = queue.get(key, {})
        total, pending = len(addrs.get(key, [])), int(q.get("pending", 0))
        if total or pending:
            rows.append(DeviceStatus(key, total, int(q.get("free", 0)), pending, tuple(sorted(addrs.get(key, [])))))
    return rows


def server_registered(tracker: str | tuple[str, int], key: str, port: int | None = None,
                      timeout_s: float = 2.0) -> bool:
    """True when a server under ``key`` (listening on ``port``, if given) is listed at the tracker
    and every listed server of that key is free.

    A server announces itself (listed) and offers itself (free) in two messages a few
    milliseconds apart; the tracker's summary does not say which server is free, so
    callers that may see busy servers of the same key use :class:`RegistrationWatch`.
    """
    return RegistrationWatch(tracker, key, port, timeout_s).ready()


class RegistrationWatch:
    """Polls whether a server has registered: listed, and either all servers of its key are
    free or it has been listed for ``grace_s`` seconds (its offer follows the listing at once)."""

    def __init__(self, tracker: str | tuple[str, int], key: str, port: int | None = None,
                 timeout_s: float = 2.0, grace_s: float = 1.0):
        self.tracker, self.key, self.port, self.timeout_s, self.grace_s = tracker, key, port, timeout_s, grace_s
        self._listed_at: float | None = None

    def ready(self) -> bool:
        import time

        try:
            data = tracker_summary(self.tracker, self.timeout_s)
        except TrackerUnreachable:
            return False
        mine = [i for i in data.get("server_info", []) if i.get("key") == f"server:{self.key}"]
        if not any(self.port is None or int(i["addr"][1]) == self.port for i in mine):
            return False
        if self._listed_at is None:
            self._listed_at = time.monotonic()
        free = int(data.get("queue_info", {}).get(self.key, {}).get("free", 0))
        return free >= len(mine) or (free > 0 and time.monotonic() - self._listed_at >= self.grace_s)


@dataclass
class Session:
    """An RPC session on one device.

    Attributes
    ----------
    sess : tvm.rpc.RPCSession
    key : str
    address : str
        ``HOST:PORT`` of the device's RPC server.
    tracker : str
    """

    sess: Any
    key: str
    address: str
    tracker: str

    @property
    def name(self) -> str:
        """How errors name the device: ``key@host:port``."""
        return f"{self.key}@{self.address}"

    def device_info(self) -> dict[str, Any] | None:
        """What an hwface device server says about itself (None for a plain TVM server)."""
        try:
            fn = self.sess.get_function("hwface.device_info")
        except Exception:  # a plain tvm.exec.rpc_server does not have it
            return None
        return json.loads(str(fn()))


def connect(tracker: str | tuple[str, int], key: str, timeout_s: float = 60.0,
            session_timeout_s: float = 0.0) -> Session:
    """Ask the tracker for a free server under ``key`` and open an RPC session on it.

    Parameters
    ----------
    tracker : str or (host, port)
    key : str
    timeout_s : float
        How long to wait for a server of that key to become free, in seconds.
    session_timeout_s : float
        The server ends the session after this many seconds (0: never).

    Raises
    ------
    TrackerUnreachable
    NoDevice
        No server is registered under ``key`` (the message lists the keys that
        are), or none became free within ``timeout_s``.
    DeviceLost
        The server the tracker handed out could not be reached.
    """
    from tvm import rpc

    addr = _as_addr(tracker)
    devices = list_devices(addr, timeout_s=min(timeout_s, 10.0))
    if not any(d.key == key and d.total for d in devices):
        known = ", ".join(f"{d.key} ({d.total})" for d in devices) or "none"
        raise NoDevice(f"no device registered under key {key!r} at tracker {_fmt(addr)} (keys: {known})")
    sock = open_tracker(addr, timeout_s=timeout_s)
    try:
        _send(sock, [_REQUEST, key, "", 1])
        reply = _recv(sock)
    except (socket.timeout, TimeoutError):
        raise NoDevice(f"no device under key {key!r} became free at tracker {_fmt(addr)} "
                       f"within {timeout_s:g} s") from None
    except (OSError, ConnectionError, ValueError) as exc:
        raise TrackerUnreachable(f"RPC tracker at {_fmt(addr)} dropped the request: {exc}") from None
    finally:
        sock.close()
    if not isinstance(reply, list) or reply[0] != _SUCCESS:
        raise NoDevice(f"tracker {_fmt(addr)} refused the request for {key!r}: {reply!r}")
    host, port, matchkey = reply[1]
    try:
        sess = rpc.connect(host, int(port), matchkey, session_timeout=session_timeout_s)
    except Exception as exc:  # TVM raises its own error classes from the FFI
        raise DeviceLost(f"device {key}@{host}:{port} (from tracker {_fmt(addr)}) refused the session: "
                         f"{error_line(exc)}") from None
    return Session(sess=sess, key=key, address=f"{host}:{port}", tracker=_fmt(addr))

