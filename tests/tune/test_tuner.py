"""Tuning over a loopback tracker: records, reuse across models, tuned builds, CPU-keyed logs."""

from __future__ import annotations

import json
import re

import pytest

from hwface.compile import compile_artifact
from hwface.errors import HwfaceError
from hwface.targets import load_target
from hwface.tune import logs
from hwface.tune.tuner import heaviest_kernels, tune
from tests.tune.conftest import assert_every_record_replays


@pytest.mark.slow  # a real tune
def test_tune_records_and_reports(tiny_a, tuning_logs, cli):
    report = tune(onnx_path=tiny_a, target="host", trials=4, trials_per_kernel=2, show_progress=False)
    assert report.stopped is None and report.trials_run >= 2
    assert report.device.startswith("host@127.0.0.1:")
    st = logs.status(load_target("host"))
    assert st.path.is_relative_to(tuning_logs / "host") and st.records > 0 and st.db_hash == report.db_hash
    measured = [k for k in report.kernels if k.best_us]
    assert measured and all(k.untuned_us for k in report.kernels)
    # the default schedule is a record too: the best is never slower than untuned
    assert all(k.best_us <= k.untuned_us * 1.0001 for k in measured)
    rows = report.rows()
    assert abs(sum(r["share_%"] for r in rows) - 100) < 1.0


@pytest.mark.slow  # a real tune
def test_reuse_across_models(tiny_a, tiny_b, tuning_logs):
    first = tune(onnx_path=tiny_a, target="host", trials=12, trials_per_kernel=2, show_progress=False)
    assert all(k.records >= 2 for k in first.kernels)
    second = tune(onnx_path=tiny_b, target="host", trials=12, trials_per_kernel=2, show_progress=False)
    reused = [k for k in second.kernels if k.reused]
    new = [k for k in second.kernels if not k.reused]
    assert len(reused) == len(first.kernels) and len(new) == 1  # only the depthwise kernel is new
    assert all(k.trials_this_run == 0 for k in second.kernels if k.reused)
    assert second.trials_run == sum(k.trials_this_run for k in second.kernels if not k.reused) > 0
    # a bigger budget tunes the shared kernels on from tiny_b, whose reduction block has another name
    more = max(k.records for k in second.kernels) + 1
    third = tune(onnx_path=tiny_b, target="host", trials=len(second.kernels), trials_per_kernel=more,
                 show_progress=False, measure_baseline=False)
    assert third.trials_run > 0 and not any(k.reused for k in third.kernels)
    grown = {k3.name: (k2.records, k3.records, k3.trials_this_run) for k3, k2 in zip(third.kernels, second.kernels)}
    assert grown["mean"][1] > grown["mean"][0], grown  # its new records are kept
    assert assert_every_record_replays(logs.logs_dir(load_target("host"))) == sum(k.records for k in third.kernels)


@pytest.mark.slow  # a real tune
def test_tuned_compile_applies_logs(tiny_a, tuning_logs, tmp_path, cli):
    tune(onnx_path=tiny_a, target="host", trials=8, trials_per_kernel=2, show_progress=False)
    res = cli("compile", "--onnx", tiny_a, "-o", tmp_path / "tuned", "--format", "json")
    assert res.code == 0, res.err
    tuned = json.loads(res.out)
    assert tuned["tuning_db_hash"] == logs.status(load_target("host")).db_hash
    assert tuned["tuned_kernels"] > 0
    res = cli("compile", "--onnx", tiny_a, "-o", tmp_path / "untuned", "--untuned", "--format", "json")
    assert json.loads(res.out)["tuning_db_hash"] is None
    res = cli("run", tmp_path / "tuned", "--check", "--format", "json")
    assert res.code == 0 and json.loads(res.out)["check"]["match"]


def test_host_logs_of_another_cpu_are_not_applied(tiny_a, tuning_logs, tmp_path, cli):
    spec = load_target("host")
    assert logs.cpu_id(spec) in str(logs.logs_dir(spec))
    other = tuning_logs / "host" / "some-other-cpu_skylake_8c"
    other.mkdir(parents=True)
    (other / logs.RECORD_FILE).write_text('{"not": "read"}\n')
    (other / logs.WORKLOAD_FILE).write_text("")
    assert logs.open_database(spec) == (None, None)
    assert logs.status(spec).other_cpus == ("some-other-cpu_skylake_8c",)
    res = cli("compile", "--onnx", tiny_a, "-o", tmp_path / "a")
    assert res.code == 0 and "some-other-cpu_skylake_8c" in res.err and "not applied" in res.err


def test_torn_last_line_is_repaired(tuning_logs):
    spec = load_target("host")
    path = logs.logs_dir(spec)
    path.mkdir(parents=True)
    (path / logs.WORKLOAD_FILE).write_text('["a", 1]\n["b", 2]\n["c"')
    (path / logs.RECORD_FILE).write_text("")
    st = logs.status(spec)
    assert st.dropped_lines == 1 and st.workloads == 2
    assert (path / logs.WORKLOAD_FILE).read_text() == '["a", 1]\n["b", 2]\n'


def test_heaviest_kernels_rank_by_latency_times_occurrences():
    # 10 us x 3 calls outweighs 25 us x 1; an unmeasured kernel ranks last
    assert heaviest_kernels([3, 1, 5], [10.0, 25.0, None], 1) == {0}
    assert heaviest_kernels([3, 1, 5], [10.0, 25.0, None], 2) == {0, 1}


@pytest.mark.slow  # a real tune
def test_top_kernels_tunes_only_the_heaviest(tiny_a, tuning_logs):
    report = tune(onnx_path=tiny_a, target="host", trials=4, trials_per_kernel=2, top_kernels=1, show_progress=False)
    tuned = [k for k in report.kernels if k.trials_this_run]
    left_out = [k for k in report.kernels if k.left_out]
    heaviest = max(report.kernels, key=lambda k: k.untuned_us * k.weight)
    assert [k.name for k in tuned] == [heaviest.name]
    assert len(left_out) == len(report.kernels) - 1 and heaviest not in left_out
    assert report.trials_per_kernel == 2 and all(k.records >= 1 for k in left_out)  # their default schedule is kept


@pytest.mark.slow  # a real tune
def test_tune_cli_writes_progress_lines_to_a_log(tiny_a, tuning_logs, cli_proc):
    res = cli_proc("tune", "--onnx", tiny_a, "--trials", "2", "--trials-per-kernel", "2", "--top-kernels", "1",
                   env={"HWFACE_TUNING_LOGS": str(tuning_logs)})
    assert res.code == 0, res.err[-2000:]
    # stderr is a pipe, not a terminal: one plain line per measured batch instead of a redrawn bar
    assert any(re.match(r"tuning [12]/2 trials, 1/1 kernels, best \S+: [\d.]+ us", line)
               for line in res.err.splitlines()), res.err
    assert "left out (--top-kernels)" in res.out


@pytest.mark.slow  # a real tune
def test_tune_cli_json_keeps_progress_on_stderr(tiny_a, tuning_logs, cli_proc):
    res = cli_proc("tune", "--onnx", tiny_a, "--trials", "2", "--trials-per-kernel", "4", "--top-kernels", "1",
                   "--format", "json", env={"HWFACE_TUNING_LOGS": str(tuning_logs)})
    assert res.code == 0, res.err[-2000:]
    report = json.loads(res.out)  # stdout holds the report only
    assert report["trials_run"] >= 1 and any(k["left_out"] for k in report["kernels"])
    assert any(line.startswith("tuning ") and " trials, 1/1 kernels" in line for line in res.err.splitlines()), res.err


def test_top_kernels_must_be_positive(tiny_a, tuning_logs, cli):
    res = cli("tune", "--onnx", tiny_a, "--top-kernels", "0")  # refused by the parser, in one line
    assert res.code == 2 and res.err.count("\n") == 1 and "argument --top-kernels: must be at least 1" in res.err
    for bad in ({"top_kernels": 0}, {"trials_per_kernel": 0}, {"trials": 0}):  # and by the typed API
        with pytest.raises(HwfaceError, match="must be at least 1"):
            tune(onnx_path=tiny_a, show_progress=False, **bad)


def test_a_key_of_an_emulated_target_makes_a_rehearsal():
    from hwface.tune.tuner import device_target

    spec = load_target("android-arm64")
    assert device_target(spec, None, None) == (spec, False)
    device, rehearsal = device_target(spec, "arm64-qemu", None)  # hwface starts the emulated device
    assert rehearsal and device.name == "arm64-qemu" and device.emulated
    device, rehearsal = device_target(spec, "arm64-qemu", "127.0.0.1:9190")  # one already registered there
    assert rehearsal and device.name == "android-arm64" and device.rpc_key == "arm64-qemu" and device.emulated
    device, rehearsal = device_target(spec, "my-phone", None)
    assert not rehearsal and device.rpc_key == "my-phone" and not device.emulated
    with pytest.raises(HwfaceError, match="builds for x86_64"):
        device_target(load_target("host"), "arm64-qemu", None)
