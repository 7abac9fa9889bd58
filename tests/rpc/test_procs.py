"""Process groups: a child's own children are stopped with it; free ports; exposure warnings."""

from __future__ import annotations

import socket
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


def test_free_port_is_bindable_on_loopback():
    port = procs.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_wildcard_bind_warns(capsys):
    assert procs.warn_if_exposed("0.0.0.0", "the RPC tracker")
    assert "warning" in capsys.readouterr().err
    assert not procs.warn_if_exposed("127.0.0.1", "the RPC tracker")
    assert capsys.readouterr().err == ""
