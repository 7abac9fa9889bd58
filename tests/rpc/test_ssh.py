"""SSH bootstrap through a real OpenSSH server on loopback (throwaway host and user keys)."""

from __future__ import annotations

import json
import sys
import time

import pytest

from hwface.rpc.devices import list_devices
from hwface.measure.remote_run import run_remote
from hwface.rpc.ssh import SshError, bootstrap, list_records, parse_ssh
from tests.conftest import assert_one_line_error
from tests.rpc.conftest import wait_gone

pytestmark = pytest.mark.slow  # a real sshd

VENV_PYTHON = sys.executable


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # records of bootstrapped servers go under $HWFACE_CACHE/devices
    monkeypatch.setenv("HWFACE_CACHE", str(tmp_path / "cache"))


def test_parse_ssh():
    assert str(parse_ssh("pi@board")) == "pi@board:22"
    assert str(parse_ssh("pi@10.0.0.2:2222")) == "pi@10.0.0.2:2222"
    with pytest.raises(Exception, match="USER@HOST"):
        parse_ssh("board:22")


def test_bootstrap_use_and_stop(sshd, rpc_tracker, rpc_host_artifact, cli, tmp_path):
    known = tmp_path / "known_hosts"  # empty: the host is new, trusted by the flag and recorded
    res = cli("device", "bootstrap", "--ssh", sshd.target, "--key", "via-ssh", "--tracker", rpc_tracker.address,
              "--identity", sshd.identity, "--known-hosts", known, "--python", VENV_PYTHON,
              "--accept-new-host-key")
    assert res.code == 0, res.err
    assert "registered at" in res.out
    assert sshd.host_key_line.split()[2] in known.read_text()
    (rec,) = list_records()
    assert rec.key == "via-ssh" and rec.ssh == sshd.target
    assert "password" not in rec.path.read_text()
    rows = {r.key: r for r in list_devices(rpc_tracker.address)}
    assert rows["via-ssh"].total == 1 and rows["via-ssh"].free == 1

    result = run_remote(rpc_host_artifact, rpc_tracker.address, "via-ssh", timeout_s=120)
    assert result.device == f"via-ssh@127.0.0.1:{rec.port}"
    assert result.output.shape == (1, 128) and result.latency is not None

    listed = cli("device", "list", "--format", "json")
    assert [r["key"] for r in json.loads(listed.out)] == ["via-ssh"]
    res = cli("device", "stop", "--key", "via-ssh")
    assert res.code == 0, res.err
    assert f"pid {rec.pid}" in res.out
    deadline = time.monotonic() + 15
    while any(r.key == "via-ssh" for r in list_devices(rpc_tracker.address)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(r.key == "via-ssh" for r in list_devices(rpc_tracker.address))
    assert list_records() == []
    assert wait_gone(rec.pid)  # the remote is this machine: its whole process group is gone
    assert_one_line_error(cli("device", "stop", "--key", "via-ssh"), "no bootstrapped device")


def test_unknown_host_key_is_refused(sshd, rpc_tracker, cli, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(SshError, match="unknown SSH host key.*--accept-new-host-key"):
        bootstrap(sshd.target, "k", rpc_tracker.address, identity=sshd.identity, known_hosts=empty,
                  python=VENV_PYTHON)
    res = cli("device", "bootstrap", "--ssh", sshd.target, "--key", "k", "--tracker", rpc_tracker.address,
              "--identity", sshd.identity, "--known-hosts", empty, "--python", VENV_PYTHON)
    assert_one_line_error(res, "unknown SSH host key", f"[127.0.0.1]:{sshd.port}")
    assert empty.read_text() == ""


def test_changed_host_key_is_refused_even_with_accept_new(sshd, rpc_tracker, tmp_path):
    forged = tmp_path / "known_hosts"
    other = (sshd.dir / "wrong_key.pub").read_text().split()
    forged.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    with pytest.raises(SshError, match="does not match"):
        bootstrap(sshd.target, "k", rpc_tracker.address, identity=sshd.identity, known_hosts=forged,
                  python=VENV_PYTHON, accept_new_host_key=True)


def test_wrong_key_is_refused(sshd, rpc_tracker, cli):
    res = cli("device", "bootstrap", "--ssh", sshd.target, "--key", "k", "--tracker", rpc_tracker.address,
              "--identity", sshd.wrong_identity, "--known-hosts", sshd.known_hosts, "--python", VENV_PYTHON)
    assert_one_line_error(res, "SSH authentication failed", sshd.target)


def test_unreachable_host(rpc_tracker, cli, tmp_path):
    from hwface.rpc.procs import free_port

    port = free_port()
    res = cli("device", "bootstrap", "--ssh", f"me@127.0.0.1:{port}", "--key", "k", "--tracker",
              rpc_tracker.address, "--known-hosts", tmp_path / "kh")
    assert_one_line_error(res, "cannot reach", f"127.0.0.1:{port}")


def test_remote_without_tvm(sshd, rpc_tracker, cli):
    res = cli("device", "bootstrap", "--ssh", sshd.target, "--key", "k", "--tracker", rpc_tracker.address,
              "--identity", sshd.identity, "--known-hosts", sshd.known_hosts, "--python", "/usr/bin/python3")
    assert_one_line_error(res, "has no TVM runtime")
    res = cli("device", "bootstrap", "--ssh", sshd.target, "--key", "k", "--tracker", rpc_tracker.address,
              "--identity", sshd.identity, "--known-hosts", sshd.known_hosts, "--python", "/nonexistent/python")
    assert_one_line_error(res, "no Python at")
