"""`hwface profile`: per-kernel and end-to-end timing of a tiny network over a loopback tracker."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hwface.latency.key import LayerKey
from hwface.latency.store import EmulatedMeasurement, LatencyStore, db_path
from hwface.targets import load_target
from tests.conftest import assert_one_line_error


@pytest.fixture(scope="module")
def loopback():
    """A private tracker + one host RPC server on 127.0.0.1 (module-scoped)."""
    from hwface.rpc.embedded import embedded_device

    with embedded_device() as ep:
        yield ep


def test_profile_tiny_network_over_loopback_tracker(tiny_onnx, loopback, latency_db, quick_guard):
    from hwface.measure.drift import DriftGuard
    from hwface.workflows.profile import profile_model

    # a zero tolerance re-measures every batch once: the device must survive timing its libraries again
    always_redo = DriftGuard(load_target("host"), tolerance=0.0, max_attempts=2, rests_s=(0.0,), min_repeat_ms=2,
                             reference=quick_guard.reference)
    r = profile_model(onnx_path=tiny_onnx, target="host", tracker=loopback.tracker, repeat=3, min_repeat_ms=2,
                      store=True, guard=always_redo)
    assert always_redo.redone == 2 and r.guard == {"batches": 2, "redone": 2, "drifted": 2}
    assert [row.layers for row in r.rows] == [["stem.0", "stem.2"], ["block.0", "block.2"], ["pw"], ["head"]]
    assert [row.op for row in r.rows] == ["conv", "dwconv", "pwconv", "fc"]
    for row in r.rows:
        assert 0 < row.p10_us <= row.median_us <= row.p90_us and row.samples == 3
        assert LayerKey.from_str(row.key).to_str() == row.key
    assert abs(sum(row.share for row in r.rows) - 1) < 1e-9
    assert r.end_to_end.median_us > 0 and r.ratio == pytest.approx(r.kernel_sum_us / r.end_to_end.median_us)
    assert "ratio" in r.gap_note and not r.tuned and r.device.startswith("host@127.0.0.1:")
    with LatencyStore(db_path("host")) as db:
        frame = db.frame()
    assert len(frame) == 4 and set(frame["regime"]) == {"default"} and set(frame["source"]) == {"tiny"}
    assert set(frame["fingerprint"]) == {r.fingerprint} and frame["reference"].notna().all()
    with LatencyStore(db_path("host")) as db:
        nets = db.networks_frame(fingerprint=r.fingerprint, regime="default")
    assert list(nets["name"]) == ["tiny"] and nets["kernel_calls"][0] == 4
    assert nets["median_us"][0] == pytest.approx(r.end_to_end.median_us) and nets["split"][0] == "train"
    assert sum(n for _, n in nets["kernels"][0]) == 4 and nets["reference"][0]["end_to_end"]["attempts"] >= 1
    assert set(frame["tuned"]) == {0} and frame["tuning_db_hash"].isna().all()
    assert frame["device_machine"].notna().all() and (frame["tvm_version"] == "0.27.0.post1").all()


@pytest.mark.slow  # a real tune, then a profile
def test_profile_applies_tuning_records(tiny_onnx, loopback, latency_db, tmp_path, monkeypatch, quick_guard):
    from hwface.workflows.profile import profile_model
    from hwface.tune.logs import open_database
    from hwface.tune.tuner import tune

    monkeypatch.setenv("HWFACE_TUNING_LOGS", str(tmp_path / "tuning_logs"))
    spec = load_target("host")
    tune(onnx_path=tiny_onnx, target=spec.name, trials=2, trials_per_kernel=1, tracker=loopback.tracker,
         show_progress=False)
    database, db_hash = open_database(spec)
    r = profile_model(onnx_path=tiny_onnx, target=spec, tracker=loopback.tracker, database=database,
                      tuning_db_hash=db_hash, repeat=2, min_repeat_ms=1, store=True, guard=quick_guard)
    assert r.tuned and r.tuned_kernels == r.distinct_kernels == 4 and all(row.tuned for row in r.rows)
    with LatencyStore(db_path("host")) as db:
        frame = db.frame()
    assert set(frame["tuned"]) == {1} and set(frame["tuning_db_hash"]) == {db_hash}


def test_profile_cli_json(tiny_onnx, loopback, latency_db, cli):
    res = cli("profile", "--onnx", tiny_onnx, "--tracker", loopback.tracker, "--repeat", "2", "--min-repeat-ms", "1",
              "--untuned", "--no-store", "--format", "json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["summary"]["kernel_calls"] == 4 and out["summary"]["stored"] is None
    assert out["summary"]["ratio"] > 0 and "large_gap" in out["summary"]
    assert {k["kernel"] for k in out["kernels"]} >= {"fused_matmul_add3"}
    assert not db_path("host").exists()


def test_profile_refuses_to_store_emulated_latencies(tiny_onnx, latency_db):
    from hwface.workflows.profile import profile_model

    spec = dataclasses.replace(load_target("host"), emulated=True)
    with pytest.raises(EmulatedMeasurement, match="never stored"):
        profile_model(onnx_path=tiny_onnx, target=spec, store=True)


def test_profile_bad_input_is_a_one_line_error(cli):
    assert_one_line_error(cli("profile", "--model", "mobilefacenet", "--input-shape", "1", "3", "8", "8"),
                          "--input-shape")
    assert_one_line_error(cli("profile", "--model", "mobilefacenet", "--target", "nosuch"), "unknown target")
