"""The embedded default (private tracker + host server) and the foreground commands: everything
started is stopped on exit, Ctrl-C and SIGTERM included."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from hwface.errors import HwfaceError
from hwface.rpc.devices import TrackerUnreachable, list_devices
from hwface.rpc.embedded import device_for, embedded_device
from hwface.targets import load_target
from tests.conftest import REPO
from tests.rpc.conftest import wait_gone


def _readline(proc: subprocess.Popen, timeout_s: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not ready:
        proc.kill()
        pytest.fail(f"no output within {timeout_s} s")
    return proc.stdout.readline()


def _child_groups(pid: int) -> list[int]:
    return [c.pid for c in psutil.Process(pid).children() if os.getpgid(c.pid) == c.pid]


def test_embedded_device_starts_and_stops_everything():
    with embedded_device(n_servers=1) as ep:
        assert ep.key == "host" and ep.tracker_host == "127.0.0.1"
        (row,) = list_devices(ep.tracker)
        assert (row.key, row.total, row.free) == ("host", 1, 1)
        groups = _child_groups(os.getpid())
        assert len(groups) >= 2
    assert all(wait_gone(g) for g in groups)
    with pytest.raises(TrackerUnreachable):
        list_devices(ep.tracker, timeout_s=2)


def test_device_for_host_target_is_embedded():
    with device_for(load_target("host")) as ep:
        assert [(r.key, r.total) for r in list_devices(ep.tracker)] == [("host", 1)]


def test_device_for_a_phone_without_tracker_is_an_error(tmp_path):
    spec = load_target("android-arm64")
    with pytest.raises(HwfaceError, match="--tracker"):
        with device_for(spec.__class__(**{**spec.__dict__, "tracker": None})):
            pass


def test_ctrl_c_stops_the_embedded_device():
    # SIGINT may be ignored when the suite itself runs in the background (`cmd &`):
    # the child restores it, as an interactive user's process has it
    script = textwrap.dedent("""
        import signal, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from hwface.rpc.embedded import embedded_device
        with embedded_device() as ep:
            print(ep.tracker, flush=True)
            time.sleep(300)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        tracker = _readline(proc, 120).strip()
        groups = _child_groups(proc.pid)
        assert list_devices(tracker)[0].total == 1
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
        assert all(wait_gone(g) for g in groups)
        with pytest.raises(TrackerUnreachable):
            list_devices(tracker, timeout_s=2)
    finally:
        proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_rpc_server_command_with_private_tracker_stops_on_signal(sig):
    proc = subprocess.Popen([sys.executable, "-m", "hwface.cli.main", "rpc", "server", "--key", "host"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        first = _readline(proc, 120)
        assert first.startswith("RPC tracker (private) listening on 127.0.0.1:")
        tracker = first.split()[-1]
        assert "registered at" in _readline(proc, 120)
        assert [(r.key, r.total) for r in list_devices(tracker)] == [("host", 1)]
        groups = _child_groups(proc.pid)
        proc.send_signal(sig)
        assert proc.wait(120) == 0
        assert all(wait_gone(g) for g in groups)
    finally:
        proc.kill()


def test_rpc_tracker_command_then_server_command():
    tr = subprocess.Popen([sys.executable, "-m", "hwface.cli.main", "rpc", "tracker", "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    sv = None
    try:
        line = _readline(tr, 120)
        assert line.startswith("RPC tracker listening on 127.0.0.1:")
        tracker = line.split()[4]
        sv = subprocess.Popen([sys.executable, "-m", "hwface.cli.main", "rpc", "server", "--key", "cpu0",
                               "--tracker", tracker], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=REPO)
        assert "registered at " + tracker in _readline(sv, 120)
        assert [(r.key, r.free) for r in list_devices(tracker)] == [("cpu0", 1)]
        sv.send_signal(signal.SIGINT)
        assert sv.wait(120) == 0
        deadline = time.monotonic() + 15
        while list_devices(tracker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list_devices(tracker) == []
        tr.send_signal(signal.SIGINT)
        assert tr.wait(120) == 0
        with pytest.raises(TrackerUnreachable):
            list_devices(tracker, timeout_s=2)
    finally:
        tr.kill()
        if sv is not None:
            sv.kill()
