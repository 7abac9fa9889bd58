"""Load on `hwface serve`: a fixed number of network queries from concurrent clients over loopback HTTP.

    python benchmarks/serve_load.py [--clients 8] [--requests 8000] [--target host] [--fingerprint DIGEST]

Starts the real server on a free 127.0.0.1 port in its own process group, runs
``--clients`` client processes (one keep-alive connection each) that send
``--requests`` POST /v1/latency/network queries in all (a 20-block arch spec
each, alternating among 16 specs, without the per-kernel breakdown), then stops
the server. Prints queries per second, latency percentiles and errors
(issue 14's goal: >= 2,000 queries/s from 8 clients, p99 < 20 ms, 0 errors).
Client and server share the machine's cores, so the figure is a floor.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time


def _bodies(n: int = 16) -> list[bytes]:
    import random

    from hwface.nas.space import DEFAULT_SPACE, draw_arch

    rng = random.Random(1)
    out = []
    while len(out) < n:
        spec = draw_arch(DEFAULT_SPACE, rng)
        if 16 <= spec.n_blocks <= 20:
            out.append(json.dumps({"spec": spec.to_dict(), "breakdown": False}).encode())
    return out


def _client(url: str, bodies: list[bytes], n: int, start, q) -> None:
    """Send ``n`` queries on one keep-alive connection; put (latencies in s, errors) on ``q``.

    A raw HTTP/1.1 client: http.client's parsing in Python took more of the
    shared cores than the server's answers did, so it measured the client.
    """
    host, port = url.split("//")[1].rsplit(":", 1)
    requests = [b"POST /v1/latency/network HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(b), b) for b in bodies]
    conn = socket.create_connection((host, int(port)), timeout=30)
    reader = conn.makefile("rb")
    lat, errors = [], 0
    start.wait()
    for i in range(n):
        t0 = time.perf_counter()
        try:
            conn.sendall(requests[i % len(requests)])
            status = reader.readline()
            length = 0
            for line in iter(reader.readline, b"\r\n"):
                if not line:
                    raise ConnectionError("closed")
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            reader.read(length)
            errors += not status.startswith(b"HTTP/1.1 200")
        except OSError:
            errors += 1
            conn = socket.create_connection((host, int(port)), timeout=30)
            reader = conn.makefile("rb")
        lat.append(time.perf_counter() - t0)
    q.put((lat, errors))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=8000)
    p.add_argument("--target", default="host")
    p.add_argument("--regime", default="default")
    p.add_argument("--fingerprint")
    args = p.parse_args(argv)
    import numpy as np

    cmd = [sys.executable, "-m", "hwface.cli.main", "serve", "--port", "0", "--target", args.target,
           "--regime", args.regime] + (["--fingerprint", args.fingerprint] if args.fingerprint else [])
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = server.stdout.readline()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        bodies = _bodies()
        for b in bodies:  # warm: plans and predictions cached, as in a search that revisits kernels
            c = http.client.HTTPConnection(*url.split("//")[1].rsplit(":", 1), timeout=60)
            c.request("POST", "/v1/latency/network", b, {"Content-Type": "application/json"})
            assert c.getresponse().status == 200
        start, q = mp.Event(), mp.Queue()
        per = args.requests // args.clients
        procs = [mp.Process(target=_client, args=(url, bodies, per, start, q)) for _ in range(args.clients)]
        for pr in procs:
            pr.start()
        time.sleep(1.0)
        t0 = time.perf_counter()
        start.set()
        results = [q.get() for _ in procs]
        wall = time.perf_counter() - t0
        for pr in procs:
            pr.join()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    lat = np.concatenate([np.array(r[0]) for r in results]) * 1e3
    errors = sum(r[1] for r in results)
    print(f"{len(lat)} network queries from {args.clients} clients in {wall:.2f} s: {len(lat) / wall:.0f} queries/s; "
          f"latency p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms, "
          f"max {lat.max():.1f} ms; {errors} errors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
