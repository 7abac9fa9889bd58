"""Child processes that hwface starts (trackers, RPC servers, qemu): spawn in their own
process group, stop as a group, and find free loopback ports.

A TVM RPC server forks a popen worker and per-session children; killing only the
pid it was started with leaves those behind. Every process here is therefore the
leader of a new session (``start_new_session=True``) and is stopped with
:func:`os.killpg`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Mapping, Sequence

from hwface.errors import HwfaceError

LOOPBACK = "127.0.0.1"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now (the kernel picks it).

    Raises
    ------
    HwfaceError
        ``host`` is not an address of this machine (or not an address at all).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, 0))
        except OSError as exc:  # socket.gaierror included
            raise HwfaceError(f"cannot bind {host!r}: {exc.strerror or exc}") from None
        return int(s.getsockname()[1])


def log_error_line(tail: str) -> str:
    """The line of a process log that says what went wrong: the first exception line, else the last line."""
    import re

    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    exc = re.compile(r"^[A-Za-z_][\w.]*([Ee]rror|Exception|Exit|Interrupt)\b(:|$)")
    found = [line for line in lines if exc.match(line)]
    return (found or lines or [""])[0 if found else -1]


def _log_note(proc: ManagedProcess | None) -> str:
    """``: <what went wrong> (log <path>)`` for one-line errors about ``proc``; '' without a log."""
    tail = proc.log_tail() if proc is not None else ""
    if not tail:
        return ""
    return f": {log_error_line(tail)} (log {proc.log_path})"


def warn_if_exposed(host: str, what: str) -> bool:
    """Print a warning when ``host`` makes ``what`` reachable from other machines.

    TVM RPC has no authentication and runs arbitrary code: anything other than
    loopback is worth a warning. Returns True when a warning was printed.
    """
    if host in WILDCARD_HOSTS or not (host.startswith("127.") or host in ("localhost", "::1")):
        print(
            f"hwface: warning: {what} binds {host or '0.0.0.0'}: TVM RPC has no authentication and runs "
            "arbitrary code; anyone who can reach this port can use it",
            file=sys.stderr,
        )
        return True
    return False


@dataclass
class ManagedProcess:
    """A process started by :func:`spawn`, leader of its own process group.

    Attributes
    ----------
    popen : subprocess.Popen
    cmd : list of str
    log_path : Path or None
        File receiving the process's stdout and stderr.
    """

    popen: subprocess.Popen
    cmd: list[str]
    log_path: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def pgid(self) -> int:
        """Process group id (equal to the pid: the process leads its group)."""
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, n_lines: int = 15) -> str:
        """Last lines of the process log ('' when there is none)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n_lines:])

    def stop(self, grace_s: float = 3.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``grace_s`` seconds."""
        if self._stopped:
            return
        self._stopped = True
        stop_group(self.pgid, grace_s=grace_s)
        try:
            self.popen.wait(timeout=grace_s + 2)
        except subprocess.TimeoutExpired:
            pass


GROUP_GUARD = Path(__file__).with_name("group_guard.py")
NO_TORCH = Path(__file__).with_name("no_torch")


def runtime_only_env() -> dict[str, str]:
    """This process's environment for a local tracker or RPC server: TVM's runtime only, and no torch.

    Runtime-only (``TVM_USE_RUNTIME_LIB=1``) loads the runtime library instead of the
    250 MB compiler. And TVM's FFI imports torch first whenever it is installed (a
    workaround for a symbol clash on Windows), which is 2 of the 3.5 s a TVM import
    takes on this machine; a tracker, an RPC server and the worker process each server
    starts never use it. The folder put first on ``PYTHONPATH`` holds a ``torch`` that
    raises ImportError, which TVM takes as torch being absent.
    """
    env = dict(os.environ, TVM_USE_RUNTIME_LIB="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(NO_TORCH), env.get("PYTHONPATH", "")) if p)
    return env


def spawn(cmd: Sequence[str], log_path: Path | None = None, env: Mapping[str, str] | None = None,
          cwd: str | os.PathLike | None = None) -> ManagedProcess:
    """Start ``cmd`` in a new session and process group, under :mod:`hwface.rpc.group_guard`.

    The guard leads the group and dies with the process calling this (even by
    SIGKILL), taking the whole group with it.

    Parameters
    ----------
    cmd : sequence of str
    log_path : Path, optional
        stdout and stderr go there (appended); to /dev/null when None.
    env : mapping, optional
        Full environment for the child (default: this process's).
    cwd : path, optional
    """
    out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        popen = subprocess.Popen(
            [sys.executable, str(GROUP_GUARD), *cmd], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
            preexec_fn=partial(die_with_parent, signal.SIGTERM),
        )
    except OSError as exc:
        raise HwfaceError(f"cannot start {cmd[0]}: {exc.strerror or exc}") from None
    finally:
        if log_path is not None:
            out.close()
    return ManagedProcess(popen=popen, cmd=list(cmd), log_path=log_path)


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> None:
    """Have Linux send ``sig`` to this process when the process that started it dies, even by SIGKILL.

    Runs in the child: as ``preexec_fn`` (the group guard, with SIGTERM, so a killed
    tune or profile leaves no tracker or server behind) or as a worker pool's
    initializer (builder and runner workers, with SIGKILL). ``parent``: the pid the
    child expects as its parent; when that one is already gone, the child exits.
    Uses ``PR_SET_PDEATHSIG``, so on other systems it does nothing.
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def stop_all(processes: Sequence) -> None:
    """Stop several processes (anything with ``stop()``) at once, not one after another.

    A TVM tracker or server takes its group guard's full grace period (about 2 s) to go.
    """
    with ThreadPoolExecutor(max_workers=max(1, len(processes))) as pool:
        list(pool.map(lambda p: p.stop(), processes))


def stop_group(pgid: int, grace_s: float = 3.0) -> None:
    """SIGTERM the process group ``pgid``, then SIGKILL whatever is left after ``grace_s`` s."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` exists (zombies excluded)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(…, 0) also succeeds for zombies: look for a live member.
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str,
               proc: ManagedProcess | None = None, poll_s: float = 0.1) -> None:
    """Poll ``predicate`` until it is true; raise :class:`HwfaceError` after ``timeout_s`` seconds.

    When ``proc`` exits while waiting, fail at once with the tail of its log.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return
        if proc is not None and not proc.alive():
            raise HwfaceError(f"{what}: process exited with code {proc.popen.returncode}{_log_note(proc)}")
        if time.monotonic() > deadline:
            raise HwfaceError(f"{what}: not ready after {timeout_s:g} s{_log_note(proc)}")
        time.sleep(poll_s)


def run_foreground(procs: Sequence[ManagedProcess]) -> int:
    """Wait until one of ``procs`` exits or the user presses Ctrl-C / sends SIGTERM; stop them all.

    Returns the exit code to report (0 after Ctrl-C or SIGTERM).
    """
    def _term(signum, frame):  # turn SIGTERM into the same path as Ctrl-C
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, _term)
    # Ctrl-C must stop the group even when SIGINT was ignored at start (e.g. `cmd &` in a script)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    try:
        while all(p.alive() for p in procs):
            time.sleep(0.2)
        dead = next(p for p in procs if not p.alive())
        raise HwfaceError(f"{dead.cmd[0]} exited with code {dead.popen.returncode}{_log_note(dead)}")
    except KeyboardInterrupt:
        code = 0
    finally:
        stop_all(procs)
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGINT, old_int)
    return code
