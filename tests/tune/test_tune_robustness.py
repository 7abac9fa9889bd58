"""A tune killed with SIGKILL resumes; a device that dies mid-tune ends it with a clear message; the headline command rehearses on the emulated device."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwface.rpc.server import start_server
from hwface.rpc.tracker import start_tracker
from hwface.targets import load_target
from hwface.tune import logs
from tests.conftest import REPO
from tests.tune.conftest import assert_every_record_replays

pytestmark = pytest.mark.slow  # real tunes killed and resumed, the emulated device


def _records(tuning_logs: Path) -> int:
    files = list(tuning_logs.glob("**/" + logs.RECORD_FILE))
    return sum(len(f.read_bytes().splitlines()) for f in files)


def _tune_proc(args: list, tuning_logs: Path) -> subprocess.Popen:
    env = {**os.environ, "HWFACE_TUNING_LOGS": str(tuning_logs)}
    return subprocess.Popen([sys.executable, "-m", "hwface.cli.main", "tune", *map(str, args), "--format", "json"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_resume_after_sigkill(tiny_a, tuning_logs):
    proc = _tune_proc(["--onnx", tiny_a, "--trials", "12", "--trials-per-kernel", "4"], tuning_logs)
    deadline = time.monotonic() + 600
    try:
        # the default schedules (one record a kernel), then at least one finished batch of 4
        while _records(tuning_logs) < 7 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert proc.poll() is None, "tune finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    spec = load_target("host")
    before = logs.status(spec)  # repairs a torn last line, if the kill left one
    assert before.records >= 7
    database, _ = logs.open_database(spec)
    assert database is not None and len(database.get_all_tuning_records()) == before.records

    env = {**os.environ, "HWFACE_TUNING_LOGS": str(tuning_logs)}
    done = subprocess.run([sys.executable, "-m", "hwface.cli.main", "tune", "--onnx", str(tiny_a), "--trials", "12",
                           "--trials-per-kernel", "4", "--format", "json"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    finished_before = [k for k in report["kernels"] if k["reused"]]
    # kernels finished before the kill are not tuned again; the others get their trials
    assert finished_before and all(k["trials_this_run"] == 0 and k["records"] >= 4 for k in finished_before)
    assert report["stopped"] is None and report["trials_run"] < 12
    assert all(k["trials_this_run"] > 0 for k in report["kernels"] if not k["reused"])


def test_device_killed_mid_tune(tiny_a, tuning_logs, tmp_path):
    tracker = start_tracker(log_dir=tmp_path)
    server = start_server(tracker.address, "doomed", log_dir=tmp_path)
    try:
        proc = _tune_proc(["--onnx", tiny_a, "--trials", "48", "--trials-per-kernel", "16", "--tracker",
                           tracker.address, "--key", "doomed"], tuning_logs)
        deadline = time.monotonic() + 600
        while _records(tuning_logs) < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        kept = _records(tuning_logs)
        assert kept >= 4, proc.stderr.read() if proc.poll() is not None else "no records"
        server.stop()
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 1, err[-2000:]
        assert "device lost" in err and "doomed" in err
        assert json.loads(out)["stopped"].startswith("device lost")
        assert logs.status(load_target("host")).records >= kept
    finally:
        server.stop()
        tracker.stop()


@pytest.mark.usefixtures("emulated_root")
def test_headline_command_rehearsed_on_the_emulated_device(tiny_a, tuning_logs, tmp_path, cli):
    """hwface tune --target android-arm64 --key arm64-qemu, then compile --logs and run --key arm64-qemu --check."""
    res = cli("tune", "--target", "android-arm64", "--onnx", tiny_a, "--key", "arm64-qemu", "--trials", "2",
              "--no-baseline", "--format", "json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    rehearsal = tuning_logs / "android-arm64" / "emulated-arm64-qemu"
    assert report["emulated"] and report["device"].startswith("arm64-qemu@127.0.0.1:")
    assert Path(report["logs_dir"]) == rehearsal and report["trials_run"] >= 1
    assert logs.status(load_target("android-arm64"), rehearsal).records >= 1
    assert not (tuning_logs / "android-arm64" / logs.RECORD_FILE).exists()  # the target's own logs stay untouched

    art = tmp_path / "art"
    res = cli("compile", "--onnx", tiny_a, "--target", "android-arm64", "--logs", rehearsal, "-o", art,
              "--format", "json")
    assert res.code == 0, res.err
    manifest = json.loads(res.out)
    assert manifest["tuned_kernels"] >= 1 and manifest["linker"].startswith("clang-lld")
    res = cli("run", art, "--key", "arm64-qemu", "--check", "--timeout", "300")
    assert res.code == 0, res.err
    assert "not meaningful" in res.out and "-> match" in res.out


def test_tune_without_a_tracker_says_what_to_start(tiny_a, tuning_logs, cli):
    from tests.conftest import assert_one_line_error
    from hwface.rpc.procs import free_port

    res = cli("tune", "--target", "android-arm64", "--onnx", tiny_a, "--tracker", f"127.0.0.1:{free_port()}")
    assert_one_line_error(res, "cannot reach the RPC tracker", "hwface rpc tracker", "--key arm64-qemu")


def test_tune_without_a_device_says_what_to_start(tiny_a, tuning_logs, cli, tmp_path):
    from tests.conftest import assert_one_line_error

    tracker = start_tracker(log_dir=tmp_path)
    try:
        res = cli("tune", "--target", "android-arm64", "--onnx", tiny_a, "--tracker", tracker.address)
    finally:
        tracker.stop()
    assert_one_line_error(res, "no device under key 'android-arm64'", "Android RPC app", "hwface device bootstrap")


def test_two_tunes_at_once_share_one_log(tiny_a, tiny_b, tuning_logs):
    """Both start on empty logs and add workloads at the same time; every record still replays on its workload."""
    procs = [_tune_proc(["--onnx", onnx, "--trials", "5", "--trials-per-kernel", "1", "--no-baseline"], tuning_logs)
             for onnx in (tiny_a, tiny_b)]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    assert assert_every_record_replays(logs.logs_dir(load_target("host"))) >= 5
