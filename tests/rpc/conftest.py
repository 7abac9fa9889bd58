"""Fixtures for the device-farm tests: real trackers, RPC servers, sshd and artifacts, on loopback
ports chosen at run time (never fixed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from hwface.rpc import procs

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


@pytest.fixture(scope="session")
def rpc_host_artifact(tmp_path_factory) -> Path:
    """mobilefacenet compiled for the host target (artifact directory)."""
    from hwface.compile.artifact import compile_artifact

    out = tmp_path_factory.mktemp("art") / "mobilefacenet-host"
    compile_artifact(out, target="host", model="mobilefacenet")
    return out


@pytest.fixture(scope="session")
def rpc_arm64_artifact(tmp_path_factory) -> Path:
    """mobilefacenet compiled for linux-arm64 (cross-linked with aarch64-linux-gnu-g++)."""
    from hwface.compile.artifact import compile_artifact

    if shutil.which("aarch64-linux-gnu-g++") is None:
        pytest.skip("aarch64-linux-gnu-g++ missing: make sysdeps")
    out = tmp_path_factory.mktemp("art") / "mobilefacenet-linux-arm64"
    compile_artifact(out, target="linux-arm64", model="mobilefacenet")
    return out


@pytest.fixture(scope="module")
def rpc_farm(tmp_path_factory):
    """A tracker with two host RPC servers under key ``host`` (module-scoped)."""
    from hwface.rpc.server import start_server
    from hwface.rpc.tracker import start_tracker

    logs = tmp_path_factory.mktemp("farm")
    tracker = start_tracker(log_dir=logs)
    servers = []
    try:
        servers = [start_server(tracker.address, "host", log_dir=logs) for _ in range(2)]
        yield tracker, servers
    finally:
        for s in servers:
            s.stop()
        tracker.stop()


@pytest.fixture(scope="module")
def rpc_tracker(tmp_path_factory):
    """A tracker alone on a free loopback port (module-scoped)."""
    from hwface.rpc.tracker import start_tracker

    tracker = start_tracker(log_dir=tmp_path_factory.mktemp("tracker"))
    yield tracker
    tracker.stop()


@dataclass
class Sshd:
    """A throwaway OpenSSH server on loopback."""

    port: int
    user: str
    identity: Path      # authorized private key
    wrong_identity: Path  # a key the server does not know
    known_hosts: Path   # holds the server's host key
    host_key_line: str
    proc: procs.ManagedProcess
    dir: Path

    @property
    def target(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30,
                   capture_output=True)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory) -> Sshd:
    """Debian's sshd on a free loopback port with throwaway host and user keys."""
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server missing: make sysdeps")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    elif not Path("/run/sshd").is_dir():
        pytest.skip("sshd needs /run/sshd (create it as root)")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key", "wrong_key"):
        _keygen(d / name)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = procs.free_port()
    cfg = d / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\nMaxStartups 30\n"
        f"Subsystem sftp {SFTP_SERVER}\n"
    )
    proc = procs.spawn([SSHD, "-D", "-e", "-f", str(cfg)], log_path=d / "sshd.log")

    def listening() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                return s.recv(4) == b"SSH-"
        except OSError:
            return False

    procs.wait_until(listening, 20, "sshd", proc=proc)
    pub = (d / "host_key.pub").read_text().split()
    line = f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n"
    (d / "known_hosts").write_text(line)
    import getpass

    yield Sshd(port=port, user=getpass.getuser(), identity=d / "user_key", wrong_identity=d / "wrong_key",
               known_hosts=d / "known_hosts", host_key_line=line, proc=proc, dir=d)
    proc.stop()


def wait_gone(pgid: int, timeout_s: float = 10.0) -> bool:
    """True once process group ``pgid`` has no live member (within ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not procs.group_alive(pgid):
            return True
        time.sleep(0.1)
    return False
