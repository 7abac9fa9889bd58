"""`hwface device emulate | bootstrap | stop | list`."""

from __future__ import annotations

import argparse
import sys

from hwface.cli.common import add_format
from hwface.cli.output import emit


def register(sub: argparse._SubParsersAction) -> None:
    dev = sub.add_parser("device", help="emulated AArch64 device, SSH-bootstrapped devices")
    dsub = dev.add_subparsers(dest="device_command", metavar="COMMAND")
    dsub.required = True

    p = dsub.add_parser("emulate", help="run an emulated AArch64 device (qemu-user) registered at a tracker")
    p.add_argument("--key", default="arm64-qemu", help="device key (default arm64-qemu)")
    p.add_argument("--tracker", help="tracker HOST:PORT (default: start a private one and print it)")
    p.add_argument("--prepare-only", action="store_true",
                   help="prepare the Debian arm64 root with TVM (once, ~1 min, cached) and exit")
    p.set_defaults(func=run_emulate)

    p = dsub.add_parser("bootstrap", help="start an RPC server on a machine over SSH, registered at a tracker")
    p.add_argument("--ssh", required=True, metavar="USER@HOST[:PORT]")
    p.add_argument("--key", required=True, help="device key to register under")
    p.add_argument("--tracker", required=True, help="tracker HOST:PORT, as the remote machine reaches it")
    p.add_argument("--identity", metavar="FILE", help="private key file (default: ssh-agent and ~/.ssh keys)")
    p.add_argument("--python", default="python3", metavar="PATH", help="remote Python with TVM (default python3)")
    p.add_argument("--known-hosts", metavar="FILE", help="known_hosts file (default ~/.ssh/known_hosts)")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="trust a host missing from known_hosts and add it there")
    p.add_argument("--bind", default="127.0.0.1",
                   help="address the remote server binds (default 127.0.0.1; others are reachable by anyone)")
    p.add_argument("--port", type=int, help="remote RPC port (default: a free one)")
    p.add_argument("--ask-password", action="store_true", help="prompt for an SSH password (never stored)")
    p.set_defaults(func=run_bootstrap)

    p = dsub.add_parser("stop", help="stop servers started by `hwface device bootstrap`")
    p.add_argument("--key", help="only servers of this key")
    p.add_argument("--ssh", metavar="USER@HOST[:PORT]", help="only servers on this host")
    p.add_argument("--ask-password", action="store_true", help="prompt for an SSH password (never stored)")
    p.set_defaults(func=run_stop)

    p = dsub.add_parser("list", help="servers started by `hwface device bootstrap` and not stopped")
    add_format(p)
    p.set_defaults(func=run_list)


def _password(args: argparse.Namespace) -> str | None:
    if not args.ask_password:
        return None
    import getpass

    return getpass.getpass("SSH password: ")


def run_emulate(args: argparse.Namespace) -> int:
    from hwface.cli.rpc_cmd import serve
    from hwface.rpc.emulate import prepare_root, start_emulated_server

    root = prepare_root()
    info = root.info()
    if args.prepare_only:
        print(f"emulated AArch64 root ready at {root.base} ({info['size_bytes'] / 1e9:.2f} GB, "
              f"TVM {info['tvm_version']})")
        return 0
    return serve(
        args.tracker,
        lambda tracker: start_emulated_server(tracker, args.key, root=root),
        lambda server, tracker: f"emulated AArch64 device {args.key!r} on {server.address} registered at {tracker}; "
                                "emulated: latency not meaningful; Ctrl-C stops it",
    )


def run_bootstrap(args: argparse.Namespace) -> int:
    from hwface.rpc.ssh import bootstrap

    rec = bootstrap(args.ssh, args.key, args.tracker, identity=args.identity, python=args.python,
                    accept_new_host_key=args.accept_new_host_key, known_hosts=args.known_hosts,
                    bind=args.bind, port=args.port, password=_password(args))
    print(f"started RPC server {rec.key!r} on {rec.ssh} ({rec.bind}:{rec.port}, pid {rec.pid}), "
          f"registered at {rec.tracker}; record {rec.path}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    from hwface.rpc.ssh import stop_bootstrapped

    for rec in stop_bootstrapped(key=args.key, ssh=args.ssh, password=_password(args)):
        print(f"stopped RPC server {rec.key!r} on {rec.ssh} (pid {rec.pid})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from hwface.rpc.ssh import list_records, record_summary

    rows = [record_summary(r) for r in list_records()]
    if not rows and args.format == "table":
        print("no bootstrapped devices recorded", file=sys.stdout)
        return 0
    emit(rows, args.format, columns=["key", "ssh", "server", "pid", "tracker", "started_at"])
    return 0
