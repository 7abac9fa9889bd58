"""Process groups: a child's own children are stopped with it; free ports; exposure warnings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from hwface.rpc import procs
from tests.rpc.conftest import wait_gone


def test_stop_kills_the_whole_group(tmp_path):
    # the shell leaves two grandchildren behind, as a TVM server leaves popen workers
    p = procs.spawn(["sh", "-c", "sleep 300 & sleep 300 & wait"], log_path=tmp_path / "log")
    time.sleep(0.3)
    assert procs.group_alive(p.pgid)
    p.stop(grace_s=2)
    assert wait_gone(p.pgid, 5)


def test_sigterm_ignored_escalates_to_sigkill(tmp_path):
    p = procs.spawn(["sh", "-c", "trap '' TERM; sleep 300 & wait"], log_path=tmp_path / "log")
    time.sleep(0.3)
    t0 = time.monotonic()
    p.stop(grace_s=0.5)
    assert wait_gone(p.pgid, 5)
    assert time.monotonic() - t0 < 5


def test_a_sigkilled_parent_takes_the_whole_group_down(tmp_path):
    # the parent spawns a group whose leader has its own children (as a TVM tracker has popen workers), then dies
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom hwface.rpc import procs\n"
         f"p = procs.spawn(['sh', '-c', 'sleep 300 & sleep 300 & wait'], log_path={str(tmp_path / 'log')!r})\n"
         "print(p.pgid, flush=True)\ntime.sleep(300)"],
        stdout=subprocess.PIPE, text=True)
    pgid = int(parent.stdout.readline())
    time.sleep(0.3)
    assert procs.group_alive(pgid)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert wait_gone(pgid, 10)


def test_free_port_is_bindable_on_loopback():
    port = procs.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_wildcard_bind_warns(capsys):
    assert procs.warn_if_exposed("0.0.0.0", "the RPC tracker")
    assert "warning" in capsys.readouterr().err
    assert not procs.warn_if_exposed("127.0.0.1", "the RPC tracker")
    assert capsys.readouterr().err == ""
