"""A tracker with two host servers under one key on loopback: discovery, two jobs at once,
clear errors for a bad tracker or key, and a server killed in the middle of a job."""

from __future__ import annotations

import json
import signal
import os
import threading
import time

import numpy as np
import pytest

from hwface.measure.threads import usable_cores
from hwface.rpc.devices import DeviceLost, NoDevice, TrackerUnreachable, connect, list_devices
from hwface.measure.remote_run import run_remote
from tests.conftest import assert_one_line_error
from tests.rpc.conftest import wait_gone


def test_devices_shows_two_free(rpc_farm, cli):
    tracker, servers = rpc_farm
    (row,) = list_devices(tracker.address)
    assert (row.key, row.total, row.free, row.pending) == ("host", 2, 2, 0)
    assert sorted(row.addresses) == sorted(s.address for s in servers)
    res = cli("devices", "--tracker", tracker.address, "--format", "json")
    assert res.code == 0, res.err
    assert [{k: r[k] for k in ("key", "total", "free", "pending")} for r in json.loads(res.out)] == [
        {"key": "host", "total": 2, "free": 2, "pending": 0}]
    res = cli("devices", "--tracker", tracker.address)
    assert res.code == 0 and "host" in res.out


def test_session_occupies_one_device(rpc_farm):
    tracker, _ = rpc_farm
    s = connect(tracker.address, "host", timeout_s=20)
    info = s.device_info()
    assert info["machine"] == "x86_64" and not info["emulated"] and info["runtime_only"]
    # every usable core, not TVM's x86 default of half the CPUs
    assert info["runtime_threads"] == usable_cores()
    assert list_devices(tracker.address)[0].free == 1
    del s
    deadline = time.monotonic() + 10
    while list_devices(tracker.address)[0].free != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list_devices(tracker.address)[0].free == 2


def test_two_jobs_run_on_both_devices_at_once(rpc_farm, rpc_host_artifact):
    tracker, servers = rpc_farm
    results, spans, errors = {}, {}, []

    def job(i: int) -> None:
        try:
            t0 = time.monotonic()
            results[i] = run_remote(rpc_host_artifact, tracker.address, "host", timeout_s=120)
            spans[i] = (t0, time.monotonic())
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert {results[0].device, results[1].device} == {f"host@{s.address}" for s in servers}
    assert max(s[0] for s in spans.values()) < min(s[1] for s in spans.values())  # overlapped
    np.testing.assert_array_equal(results[0].output, results[1].output)
    for r in results.values():
        assert r.output.shape == (1, 128) and not r.emulated
        assert r.latency is not None and r.latency.median_us > 0


def test_run_cli_on_the_farm_with_check(rpc_farm, rpc_host_artifact, cli):
    tracker, _ = rpc_farm
    res = cli("run", rpc_host_artifact, "--tracker", tracker.address, "--key", "host", "--check", "--format", "json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["device"].startswith("host@127.0.0.1:")
    assert report["check"]["match"] and report["check"]["max_abs_diff"] <= 1e-4
    assert report["latency_ms"]["median"] > 0


def test_unknown_key_is_a_one_line_error(rpc_farm, rpc_host_artifact, cli):
    tracker, _ = rpc_farm
    with pytest.raises(NoDevice, match="no device registered under key 'pixel9'.*host \\(2\\)"):
        connect(tracker.address, "pixel9", timeout_s=5)
    assert_one_line_error(cli("run", rpc_host_artifact, "--tracker", tracker.address, "--key", "pixel9"),
                          "'pixel9'")


def test_unreachable_tracker_is_a_one_line_error(rpc_host_artifact, cli):
    from hwface.rpc.procs import free_port

    addr = f"127.0.0.1:{free_port()}"
    with pytest.raises(TrackerUnreachable):
        list_devices(addr, timeout_s=2)
    assert_one_line_error(cli("devices", "--tracker", addr), "cannot reach the RPC tracker", addr)
    assert_one_line_error(cli("run", rpc_host_artifact, "--tracker", addr, "--key", "host"), addr)
    assert_one_line_error(cli("devices", "--tracker", "nonsense"), "HOST:PORT")


def test_server_killed_mid_job_gives_a_clear_error(rpc_tracker, rpc_host_artifact, tmp_path):
    from hwface.rpc.server import start_server

    server = start_server(rpc_tracker.address, "doomed", log_dir=tmp_path)
    outcome = {}

    def job() -> None:
        t0 = time.monotonic()
        try:
            run_remote(rpc_host_artifact, rpc_tracker.address, "doomed", timeout_s=60)
            outcome["error"] = None
        except Exception as exc:
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=job, daemon=True)
    try:
        t.start()
        # wait until the job holds the device (a session is open), then kill the server group
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = [r for r in list_devices(rpc_tracker.address) if r.key == "doomed"]
            if rows and rows[0].free == 0:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # into the upload / run
        os.killpg(server.proc.pgid, signal.SIGKILL)
        t.join(70)
        assert not t.is_alive(), "the client hung after its device died"
        err = outcome["error"]
        assert isinstance(err, DeviceLost), repr(err)
        assert f"doomed@{server.address}" in str(err)
        assert outcome["elapsed"] < 60
        assert wait_gone(server.proc.pgid)
    finally:
        server.stop()
