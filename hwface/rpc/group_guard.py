"""Run a command and take its whole process group down with it (started by path; imports nothing of hwface).

``python group_guard.py CMD ...`` runs CMD as a child in the guard's own process
group (hwface makes the guard lead a new one). When the guard gets SIGTERM,
SIGHUP or SIGINT — which Linux sends it when the hwface process that started it dies,
even by SIGKILL (PR_SET_PDEATHSIG, set by :func:`hwface.rpc.procs.spawn`) — it
stops the whole group: CMD and whatever CMD started, such as the popen workers of
a TVM tracker or RPC server, which outlive a killed parent otherwise. When CMD
exits, the guard exits with its code.
"""

import os
import signal
import subprocess
import sys
import time

GRACE_S = 2.0


def _stop_group(signum, frame):
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and not _child_exited():
        time.sleep(0.05)
    time.sleep(0.2)  # let the child's own children see the SIGTERM too
    os.killpg(0, signal.SIGKILL)  # the guard included


def _child_exited() -> bool:
    # Not CHILD.poll(): this runs in a signal handler that interrupted CHILD.wait(), which holds the lock
    # poll() needs, so poll() would answer None until the grace period ran out.
    try:
        pid, _ = os.waitpid(CHILD.pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return pid != 0


def main() -> int:
    global CHILD
    if len(sys.argv) < 2:
        print("usage: group_guard.py CMD [ARG ...]", file=sys.stderr)
        return 2
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, _stop_group)
    CHILD = subprocess.Popen(sys.argv[1:])
    return CHILD.wait()


if __name__ == "__main__":
    sys.exit(main())
