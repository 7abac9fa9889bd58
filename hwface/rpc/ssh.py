"""SSH bootstrap (paramiko): start hwface's device server on a machine reached over SSH.

:func:`bootstrap` checks the remote Python and its TVM runtime, copies the device
server script there (SFTP), starts it detached in its own session, waits until it
is registered at the tracker, and records what it started under
``<cache>/devices/``; :func:`stop_bootstrapped` ends it (the whole process group).

Host keys are checked against known_hosts; an unknown host is refused unless
``accept_new_host_key`` is set (the key is then added to known_hosts, as
OpenSSH's ``StrictHostKeyChecking=accept-new`` does). A password, when one is
given, is only passed to paramiko: it is never written anywhere.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hwface.errors import HwfaceError
from hwface.rpc import procs
from hwface.rpc.devices import RegistrationWatch, check_key
from hwface.rpc.server import DEVICE_SERVER
from hwface.targets import parse_tracker

REMOTE_DIR = ".cache/hwface/remote"  # relative to the remote home directory
CONNECT_TIMEOUT_S = 15.0
COMMAND_TIMEOUT_S = 60.0
REGISTER_TIMEOUT_S = 90.0

_CHECK_SCRIPT = r"""
import json, os, platform, socket, sys
out = {"python": platform.python_version(), "machine": platform.machine(), "home": os.path.expanduser("~")}
try:
    import tvm, tvm.rpc
    out["tvm"] = tvm.__version__
    extra = os.path.join(os.path.dirname(tvm.__file__), "lib", "libtvm_runtime_extra.so")
    out["runtime_extra"] = extra if os.path.exists(extra) else None
except Exception as exc:
    out["tvm_error"] = "%s: %s" % (type(exc).__name__, str(exc).strip().splitlines()[-1] if str(exc).strip() else "")
s = socket.socket()
s.bind((sys.argv[1], 0))
out["free_port"] = s.getsockname()[1]
s.close()
print(json.dumps(out))
"""

# Starts argv[2:] detached (new session, stdin from /dev/null, output to argv[1]) and prints its pid.
_DETACH_SCRIPT = (
    "import subprocess, sys; log = open(sys.argv[1], 'ab'); "
    "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, "
    "start_new_session=True); print(p.pid)"
)


class SshError(HwfaceError):
    """An SSH connection or remote step failed (unreachable, refused key, missing TVM, ...)."""


@dataclass(frozen=True)
class SshTarget:
    """``USER@HOST[:PORT]``."""

    user: str
    host: str
    port: int = 22

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def parse_ssh(value: str) -> SshTarget:
    """Parse ``USER@HOST[:PORT]`` (``[v6addr]:PORT`` for IPv6).

    Raises
    ------
    HwfaceError
        When malformed.
    """
    m = re.fullmatch(r"([^@\s]+)@(\[[^\]]+\]|[^:@\s\[\]]+)(?::(\d+))?", value or "")
    if not m:
        raise HwfaceError(f"--ssh {value!r} must be USER@HOST[:PORT]")
    port = int(m.group(3) or 22)
    if not 0 < port < 65536:
        raise HwfaceError(f"--ssh {value!r} has an invalid port {port}")
    return SshTarget(m.group(1), m.group(2).strip("[]"), port)


def default_known_hosts() -> Path:
    return Path.home() / ".ssh" / "known_hosts"


def _host_id(t: SshTarget) -> str:
    return t.host if t.port == 22 else f"[{t.host}]:{t.port}"


class _RefuseUnknown:
    """paramiko missing-host-key policy: refuse, naming the host and the key's fingerprint."""

    def __init__(self, known_hosts: Path):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key) -> None:
        raise SshError(
            f"unknown SSH host key for {hostname} ({key.get_name()} {key.fingerprint}), not in {self.known_hosts}: "
            "check the fingerprint and pass --accept-new-host-key to trust it"
        )


def open_ssh(target: SshTarget, identity: str | Path | None = None, known_hosts: str | Path | None = None,
             accept_new_host_key: bool = False, password: str | None = None,
             timeout_s: float = CONNECT_TIMEOUT_S):
    """An authenticated ``paramiko.SSHClient``, host key checked.

    Parameters
    ----------
    target : SshTarget
    identity : path, optional
        Private key file; when given, only it is tried (no agent, no default keys).
    known_hosts : path, optional
        Default ``~/.ssh/known_hosts``; ``/etc/ssh/ssh_known_hosts`` is read too.
    accept_new_host_key : bool
        Trust a host that is not in known_hosts and add its key there. A key that
        differs from a known one is refused regardless.
    password : str, optional
        Used for authentication only; never stored.
    timeout_s : float
        Bound on connecting, the banner and authentication, in seconds.

    Raises
    ------
    SshError
        Unreachable host, unknown or changed host key, failed authentication.
    """
    import paramiko

    kh = Path(known_hosts) if known_hosts else default_known_hosts()
    client = paramiko.SSHClient()
    system = Path("/etc/ssh/ssh_known_hosts")
    if system.exists():
        try:
            client.load_system_host_keys(str(system))
        except (OSError, paramiko.SSHException):
            pass
    if kh.exists():
        try:
            client.load_host_keys(str(kh))
        except (OSError, paramiko.SSHException) as exc:
            raise SshError(f"cannot read known_hosts {kh}: {exc}") from None
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy() if accept_new_host_key else _RefuseUnknown(kh))
    if identity is not None and not Path(identity).is_file():
        raise SshError(f"identity file {identity} does not exist")
    try:
        client.connect(
            target.host, port=target.port, username=target.user, password=password,
            key_filename=str(identity) if identity else None,
            look_for_keys=identity is None and password is None, allow_agent=identity is None and password is None,
            timeout=timeout_s, banner_timeout=timeout_s, auth_timeout=timeout_s,
        )
    except SshError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise SshError(
            f"SSH host key for {_host_id(target)} does not match {kh} (got {exc.key.get_name()} "
            f"{exc.key.fingerprint}): refusing to connect; if the host was reinstalled, remove its old key"
        ) from None
    except paramiko.PasswordRequiredException:
        client.close()
        raise SshError(f"identity {identity} is encrypted: load it into ssh-agent instead") from None
    except paramiko.AuthenticationException:
        client.close()
        how = f"identity {identity}" if identity else ("password" if password else "agent/default keys")
        raise SshError(f"SSH authentication failed for {target} ({how})") from None
    except (socket.timeout, TimeoutError):
        client.close()
        raise SshError(f"cannot reach {target.host}:{target.port} over SSH: timed out after {timeout_s:g} s") from None
    except (paramiko.SSHException, OSError) as exc:
        client.close()
        text = str(exc).strip()
        why = getattr(exc, "strerror", None) or (text.splitlines()[-1] if text else type(exc).__name__)
        raise SshError(f"cannot reach {target.host}:{target.port} over SSH: {why}") from None
    if accept_new_host_key:
        kh.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(kh))
    return client


def run_command(client, command: str, timeout_s: float = COMMAND_TIMEOUT_S) -> tuple[int, str, str]:
    """Run ``command`` on the remote shell; (exit code, stdout, stderr), all bounded by ``timeout_s``."""
    try:
        stdin, stdout, stderr = client.exec_command(command, timeout=timeout_s)
        stdin.close()
        chan = stdout.channel
        if not chan.status_event.wait(timeout_s):
            chan.close()
            raise SshError(f"remote command did not finish within {timeout_s:g} s: {command[:80]}")
        return chan.recv_exit_status(), stdout.read().decode(errors="replace"), stderr.read().decode(errors="replace")
    except (socket.timeout, TimeoutError):
        raise SshError(f"remote command did not finish within {timeout_s:g} s: {command[:80]}") from None


@dataclass
class BootstrapRecord:
    """What :func:`bootstrap` started, as recorded under ``<cache>/devices/`` (no secrets).

    Attributes
    ----------
    key, tracker : str
    ssh : str
        ``USER@HOST:PORT``.
    identity, known_hosts : str or None
    python : str
        Remote interpreter.
    pid : int
        Remote server pid, which is also its process-group id.
    bind : str
        Address the remote server binds.
    port : int
        Its RPC port.
    log : str
        Remote log file.
    started_at : str
    """

    key: str
    tracker: str
    ssh: str
    identity: str | None
    known_hosts: str | None
    python: str
    pid: int
    bind: str
    port: int
    log: str
    started_at: str

    @property
    def path(self) -> Path:
        return records_dir() / f"{self.key}@{parse_ssh(self.ssh).host}-{parse_ssh(self.ssh).port}-{self.port}.json"

    def save(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return self.path


def records_dir() -> Path:
    from hwface.rpc.emulate import cache_dir

    return cache_dir() / "devices"


def list_records() -> list[BootstrapRecord]:
    """Every recorded bootstrapped server, oldest first."""
    out = []
    for p in sorted(records_dir().glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            out.append(BootstrapRecord(**json.loads(p.read_text())))
        except (OSError, TypeError, ValueError):
            continue
    return out


def bootstrap(ssh: str, key: str, tracker: str, identity: str | Path | None = None, python: str = "python3",
              accept_new_host_key: bool = False, known_hosts: str | Path | None = None,
              bind: str = procs.LOOPBACK, port: int | None = None, password: str | None = None,
              register_timeout_s: float = REGISTER_TIMEOUT_S) -> BootstrapRecord:
    """Start hwface's device server over SSH, registered at ``tracker`` under ``key``.

    Parameters
    ----------
    ssh : str
        ``USER@HOST[:PORT]``.
    key : str
        Device key.
    tracker : str
        ``HOST:PORT`` of the tracker, as both this machine and the remote reach it.
    identity, known_hosts, accept_new_host_key, password
        See :func:`open_ssh`.
    python : str
        Remote Python with TVM (``apache-tvm`` or a runtime-only build).
    bind : str
        Address the remote server binds (127.0.0.1 by default: reachable only from
        that machine, e.g. through a tunnel; pass its LAN address deliberately).
    port : int, optional
        Remote RPC port; a free one when None.
    register_timeout_s : float
        Seconds to wait for the registration.

    Returns
    -------
    BootstrapRecord
        Also saved under ``<cache>/devices/``.

    Raises
    ------
    SshError
        Connection, host key or authentication failures; a remote without Python
        or TVM; a server that exits or does not register in time (with its log).
    """
    target = parse_ssh(ssh)
    parse_tracker(tracker)
    check_key(key)
    procs.warn_if_exposed(bind, f"the remote RPC server for key {key!r}")
    client = open_ssh(target, identity, known_hosts, accept_new_host_key, password)
    try:
        info = _remote_python_info(client, target, python, bind)
        chosen = port or int(info["free_port"])
        pid, log = _start_remote_server(client, target, info, python, key, tracker, bind, chosen)
        record = BootstrapRecord(
            key=key, tracker=tracker, ssh=str(target), identity=str(identity) if identity else None,
            known_hosts=str(known_hosts) if known_hosts else None, python=python, pid=pid, bind=bind,
            port=chosen, log=log, started_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        try:
            _wait_registered(client, record, register_timeout_s)
        except SshError:
            run_command(client, _kill_command(pid), timeout_s=15)
            raise
        record.save()
        return record
    finally:
        client.close()


def _remote_python_info(client, target, python: str, bind: str) -> dict:
    """What the remote Python reports (version, TVM, home, a free port); refuses one without Python or TVM."""
    q = shlex.quote
    code, out, err = run_command(client, f"{q(python)} -c {q(_CHECK_SCRIPT)} {q(bind)}")
    if code != 0:
        last = (err.strip().splitlines() or out.strip().splitlines() or [f"exit code {code}"])[-1]
        if code == 127:
            raise SshError(f"{target}: no Python at {python!r} ({last}); pass --python PATH")
        raise SshError(f"{target}: {python} failed: {last}")
    info = json.loads(out.strip().splitlines()[-1])
    if "tvm" not in info:
        raise SshError(f"{target}: {python} (Python {info['python']}) has no TVM runtime: {info.get('tvm_error')}; "
                       "install apache-tvm there")
    return info


def _start_remote_server(client, target, info: dict, python: str, key: str, tracker: str, bind: str,
                         port: int) -> tuple[int, str]:
    """Upload hwface's device server and start it detached on the remote; its pid and log path."""
    q = shlex.quote
    remote_dir = f"{info['home']}/{REMOTE_DIR}"
    code, _, err = run_command(client, f"mkdir -p {q(remote_dir)}")
    if code != 0:
        raise SshError(f"{target}: cannot create {remote_dir}: {err.strip()}")
    script = f"{remote_dir}/device_server.py"
    with client.open_sftp() as sftp:
        sftp.put(str(DEVICE_SERVER), script)
    log = f"{remote_dir}/server-{key}-{port}.log"
    argv = [python, script, "--host", bind, "--port", str(port), "--port-end", str(port + 1),
            "--tracker", tracker, "--key", key]
    env = "env TVM_USE_RUNTIME_LIB=1"
    if info.get("runtime_extra"):
        argv += ["--load-library", info["runtime_extra"]]
    else:
        env = "env"
    cmd = f"cd {q(remote_dir)} && {env} {q(python)} -c {q(_DETACH_SCRIPT)} {q(log)} " + " ".join(map(q, argv))
    code, out, err = run_command(client, cmd)
    if code != 0 or not out.strip().isdigit():
        raise SshError(f"{target}: cannot start the RPC server: {(err.strip() or out.strip())[-300:]}")
    return int(out.strip()), log


def _wait_registered(client, record: BootstrapRecord, timeout_s: float) -> None:
    q = shlex.quote
    deadline = time.monotonic() + timeout_s
    last_alive_check = 0.0
    watch = RegistrationWatch(record.tracker, record.key, record.port)
    while not watch.ready():
        now = time.monotonic()
        if now - last_alive_check > 2.0:
            last_alive_check = now
            code, _, _ = run_command(client, f"kill -0 {record.pid}", timeout_s=15)
            if code != 0:
                _, tail, _ = run_command(client, f"tail -n 12 {q(record.log)}", timeout_s=15)
                raise SshError(f"the RPC server on {record.ssh} exited before registering at {record.tracker}; "
                               f"its log {record.log} ends with:\n{tail.strip()}")
        if now > deadline:
            _, tail, _ = run_command(client, f"tail -n 12 {q(record.log)}", timeout_s=15)
            raise SshError(f"the RPC server on {record.ssh} did not register at {record.tracker} within "
                           f"{timeout_s:g} s (can it reach the tracker?); its log ends with:\n{tail.strip()}")
        time.sleep(0.3)


def _kill_command(pgid: int) -> str:
    # SIGTERM the group, SIGKILL what is left after ~3 s.
    return (f"kill -TERM -- -{pgid} 2>/dev/null; for i in 1 2 3 4 5 6; do kill -0 -- -{pgid} 2>/dev/null || exit 0; "
            f"sleep 0.5; done; kill -KILL -- -{pgid} 2>/dev/null; exit 0")


def stop_bootstrapped(key: str | None = None, ssh: str | None = None, password: str | None = None
                      ) -> list[BootstrapRecord]:
    """Stop the recorded servers matching ``key`` and/or ``ssh`` (their whole process groups).

    Returns
    -------
    list of BootstrapRecord
        The servers stopped (their records are removed).

    Raises
    ------
    HwfaceError
        Nothing recorded matches.
    SshError
        A host cannot be reached (its record is kept).
    """
    target = str(parse_ssh(ssh)) if ssh else None
    matching = [r for r in list_records() if (key is None or r.key == key) and (target is None or r.ssh == target)]
    if not matching:
        what = " ".join(x for x in (f"key {key!r}" if key else "", f"host {target}" if target else "") if x)
        raise HwfaceError(f"no bootstrapped device recorded{' for ' + what if what else ''} in {records_dir()}")
    stopped = []
    for rec in matching:
        client = open_ssh(parse_ssh(rec.ssh), rec.identity, rec.known_hosts, password=password)
        try:
            run_command(client, _kill_command(rec.pid), timeout_s=30)
        finally:
            client.close()
        rec.path.unlink(missing_ok=True)
        stopped.append(rec)
    return stopped


def record_summary(rec: BootstrapRecord) -> dict[str, Any]:
    """One row for tables: key, ssh, server address, pid, tracker."""
    return {"key": rec.key, "ssh": rec.ssh, "server": f"{rec.bind}:{rec.port}", "pid": rec.pid,
            "tracker": rec.tracker, "started_at": rec.started_at}
