"""hwface's device-side RPC server: ``tvm.exec.rpc_server`` plus one function, ``hwface.device_info``.

This file runs on the device with nothing but TVM installed (it never imports
hwface): hwface starts it by path on this machine, copies it next to the root
of an emulated device, and uploads it over SSH to a bootstrapped one.

The server times kernels on every core it may use: TVM's x86 default is half the
logical CPUs (it assumes hyper-threads), so ``TVM_NUM_THREADS`` is set to the
affinity mask's size unless it is already set.

``hwface.device_info()`` returns JSON: machine (``platform.machine()``), system,
Python and TVM versions, the runtime's thread count (``runtime_threads``) and
``emulated`` (set by ``HWFACE_EMULATED=1``), so a
client can refuse a shared object built for another architecture before sending
it, and never report a timing measured under emulation as a latency.

The arguments are those of ``python -m tvm.exec.rpc_server``; ``--host`` defaults to
127.0.0.1 (TVM RPC has no authentication).
"""

import argparse
import logging
import os
import sys


def _register_device_info():
    # Runs in the TVM popen worker that serves the sessions (cloudpickled from
    # __main__, so it must import what it uses itself).
    import json
    import os
    import platform
    import socket

    import tvm
    import tvm_ffi

    info = {
        "machine": platform.machine(),
        "system": platform.system(),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "tvm_version": tvm.__version__,
        "emulated": os.environ.get("HWFACE_EMULATED") == "1",
        "runtime_only": os.environ.get("TVM_USE_RUNTIME_LIB") == "1",
        "runtime_threads": int(tvm.get_global_func("runtime.NumThreads")()),
        "pid": os.getpid(),
    }

    @tvm_ffi.register_global_func("hwface.device_info", override=True)
    def _device_info():
        return json.dumps(info)


def _wait_for_tracker(addr, timeout_s=60.0):
    """Return once the tracker at ``addr`` accepts connections (at most ``timeout_s`` s).

    TVM's server retries a tracker that is not up yet only every 5 s; started
    beside its tracker, it would register seconds after the tracker is ready.
    """
    import socket
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(addr, timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.05)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--port-end", type=int, default=9199)
    parser.add_argument("--tracker", help="HOST:PORT of the RPC tracker to register at")
    parser.add_argument("--key", default="")
    parser.add_argument("--load-library", help="extra libraries to load, ':'-separated")
    parser.add_argument("--custom-addr", help="address to report to the tracker instead of the peer address")
    parser.add_argument("--silent", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    # hwface.measure.threads.use_all_cores, repeated: this file never imports hwface
    os.environ.setdefault("TVM_NUM_THREADS", str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                                 else os.cpu_count() or 1))

    from tvm import rpc

    tracker_addr = None
    if args.tracker:
        host, port = args.tracker.rsplit(":", 1)
        tracker_addr = (host, int(port))
        _wait_for_tracker(tracker_addr)
    server = rpc.Server(
        args.host, args.port, args.port_end, key=args.key, tracker_addr=tracker_addr,
        load_library=args.load_library, custom_addr=args.custom_addr, silent=args.silent,
        server_init_callback=_register_device_info,
    )
    print(f"hwface device server: listening on {args.host}:{server.port} key={args.key!r}", flush=True)
    server.proc.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
