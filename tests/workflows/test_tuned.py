"""The tuned regime's networks: tuned at one budget into shared logs, measured, and timed beside onnxruntime."""

from __future__ import annotations

import pytest

from hwface.latency.store import LatencyStore, db_path
from hwface.targets import load_target
from hwface.tune import logs

pytestmark = pytest.mark.slow  # tuning at a budget, both engines

BUDGET = 2


@pytest.fixture
def tuning_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("HWFACE_TUNING_LOGS", str(tmp_path / "tuning_logs"))
    return tmp_path / "tuning_logs"


def test_networks_tuned_at_one_budget_share_their_kernels_and_store_the_tuned_regime(
        tiny_onnx, latency_db, tuning_logs, quick_guard):
    from hwface.compile.network import fused_module, load_network
    from hwface.workflows.networks import NetworkJob, measure_networks
    from hwface.workflows.tuned import tune_at_budget

    spec = load_target("host")
    said: list[str] = []
    job = NetworkJob("tiny", lambda: {**tune_at_budget(spec, BUDGET, said.append, onnx_path=tiny_onnx),
                                      "split": "heldout"})
    run = measure_networks(spec, "tuned", [job], repeat=2, min_repeat_ms=1, guard=quick_guard)
    assert (run.measured, run.failed) == (1, [])
    folder = logs.budget_dir(spec, BUDGET)
    assert folder.parent == logs.logs_dir(spec) and (folder / logs.RECORD_FILE).exists()
    database, _ = logs.open_database(spec, path=folder)
    tasks = logs.kernel_tasks(fused_module(load_network(None, tiny_onnx), spec), spec)
    counts = logs.record_counts(database, [t.dispatched[0] for t in tasks])
    assert counts and min(counts) >= BUDGET  # K tuned candidates, TVM's default schedule besides
    with LatencyStore(db_path("host")) as db:
        nets = db.networks_frame(regime="tuned")
        rows = db.frame(regime="tuned")
    assert list(nets["name"]) == ["tiny"] and nets["split"][0] == "heldout" and nets["trials_per_kernel"][0] == BUDGET
    assert set(rows["split"]) == {"heldout"} and set(rows["trials_per_kernel"]) == {BUDGET}
    assert rows["tuned"].all()
    again = tune_at_budget(spec, BUDGET, said.append, onnx_path=tiny_onnx)  # every kernel already has K records
    assert said[-1].startswith(f"tuned 0 of {len(counts)} kernels") and again["trials_per_kernel"] == BUDGET


def test_tvm_and_onnxruntime_timed_alternately_agree_on_the_output(tiny_onnx, tmp_path, latency_db):
    from hwface.compile.artifact import compile_artifact
    from hwface.latency.store import utc_now
    from hwface.measure.engines import compare_engines
    from hwface.workflows.zoo_data import engine_row

    art = compile_artifact(tmp_path / "art", "host", onnx_path=tiny_onnx)
    c = compare_engines(art.directory, art.onnx_path, rounds=3, repeat=2, min_repeat_ms=2)
    assert c.rounds == 3 and c.threads >= 1 and c.max_abs_diff < 1e-3
    assert 0 < c.tvm.p10_us <= c.tvm.median_us <= c.tvm.p90_us
    assert c.ratio_p10 <= c.ratio <= c.ratio_p90
    assert c.ratio == pytest.approx(c.tvm.median_us / c.onnxruntime.median_us, rel=1.0)
    spec = load_target("host")
    with LatencyStore(db_path("host")) as db:
        db.add_engine_comparison(engine_row("tiny", spec, "f" * 16, BUDGET, None, c, utc_now()))
        db.add_engine_comparison(engine_row("tiny", spec, "f" * 16, BUDGET, None, c, utc_now()))  # replaces
        frame = db.engine_comparisons_frame(regime="tuned")
    assert list(frame["network"]) == ["tiny"] and frame["ratio"][0] == pytest.approx(c.ratio)
