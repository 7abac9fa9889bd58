"""`hwface rpc tracker`, `hwface rpc server`, `hwface devices`."""

from __future__ import annotations

import argparse
import os
import sys

from hwface.cli.common import add_format
from hwface.cli.output import emit

DEFAULT_TRACKER = "127.0.0.1:9190"


def default_tracker() -> str:
    """``$HWFACE_TRACKER`` or 127.0.0.1:9190."""
    return os.environ.get("HWFACE_TRACKER") or DEFAULT_TRACKER


def register(sub: argparse._SubParsersAction) -> None:
    rpc = sub.add_parser("rpc", help="run an RPC tracker or an RPC server for this machine (foreground)")
    rsub = rpc.add_subparsers(dest="rpc_command", metavar="COMMAND")
    rsub.required = True

    p = rsub.add_parser("tracker", help="start an RPC tracker (Ctrl-C stops it)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int, default=9190, help="port (default 9190; 0 picks a free one)")
    p.set_defaults(func=run_tracker)

    p = rsub.add_parser("server", help="start an RPC server for this machine's CPU (Ctrl-C stops it)")
    p.add_argument("--key", required=True, help="device key to register under, e.g. host")
    p.add_argument("--tracker", help="tracker HOST:PORT (default: start a private one and print it)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: a free one)")
    p.set_defaults(func=run_server)

    p = sub.add_parser("devices", help="devices registered at a tracker: per key, total, free and pending")
    p.add_argument("--tracker", help=f"tracker HOST:PORT (default $HWFACE_TRACKER or {DEFAULT_TRACKER})")
    add_format(p)
    p.set_defaults(func=run_devices)


def run_tracker(args: argparse.Namespace) -> int:
    from hwface.rpc import procs
    from hwface.rpc.tracker import start_tracker

    tracker = start_tracker(args.host, port=args.port or None)
    print(f"RPC tracker listening on {args.host}:{tracker.port} (log {tracker.proc.log_path}); Ctrl-C stops it",
          flush=True)
    return procs.run_foreground([tracker.proc])


def serve(tracker: str | None, start_device, describe) -> int:
    """Start a device with ``start_device(tracker_address)`` (and a private tracker when ``tracker`` is None),
    print ``describe(server, tracker_address)`` and run in the foreground until Ctrl-C; everything is
    stopped by process group."""
    from hwface.rpc import procs
    from hwface.rpc.tracker import start_tracker

    started = []
    try:
        if tracker is None:
            t = start_tracker()
            started.append(t)
            tracker = t.address
            print(f"RPC tracker (private) listening on {tracker}", flush=True)
        server = start_device(tracker)
        started.append(server)
    except BaseException:
        for p in reversed(started):
            p.stop()
        raise
    print(describe(server, tracker), flush=True)
    return procs.run_foreground([p.proc for p in started])


def run_server(args: argparse.Namespace) -> int:
    from hwface.rpc.devices import open_tracker
    from hwface.rpc.server import start_server

    if args.tracker:
        open_tracker(args.tracker).close()  # TVM's server would retry an unreachable tracker forever
    return serve(
        args.tracker,
        lambda tracker: start_server(tracker, args.key, host=args.host, port=args.port),
        lambda server, tracker: f"RPC server {args.key!r} on {server.address} registered at {tracker} "
                                f"(log {server.proc.log_path}); Ctrl-C stops it",
    )


def run_devices(args: argparse.Namespace) -> int:
    from hwface.rpc.devices import list_devices

    tracker = args.tracker or default_tracker()
    rows = [d.to_dict() for d in list_devices(tracker)]
    if args.format == "json":
        emit(rows, "json")
    elif not rows:
        print(f"no devices registered at {tracker}", file=sys.stderr if args.format == "csv" else sys.stdout)
        if args.format == "csv":
            emit([], "csv")
    else:
        emit(rows, args.format, columns=["key", "total", "free", "pending"], title=f"devices at {tracker}")
    return 0
