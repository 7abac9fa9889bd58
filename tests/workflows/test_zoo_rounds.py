"""The zoo timed in rounds on both engines: stored per run, and the claims' end-to-end figures come from it."""

from __future__ import annotations

import numpy as np
import pytest

from hwface.errors import HwfaceError
from hwface.latency.store import LatencyStore, db_path

pytestmark = pytest.mark.slow


def test_two_networks_in_rounds_on_both_engines_feed_the_claims(latency_db, tmp_path, monkeypatch):
    from hwface.claims.data import load_claims_data
    from hwface.workflows.zoo_rounds import time_zoo_in_rounds

    monkeypatch.setenv("HWFACE_TUNING_LOGS", str(tmp_path / "tuning_logs"))  # no records: untuned artifacts
    run = time_zoo_in_rounds("host", models=["mobilefacenet", "mobilefacenet_relu"], rounds=3, repeat=1,
                             min_repeat_ms=1)
    assert run.networks == ("mobilefacenet", "mobilefacenet_relu") and run.stored == 4
    with LatencyStore(db_path("host")) as db:
        frame = db.round_timings_frame()
    assert set(frame["run_id"]) == {run.run_id} and set(frame["engine"]) == {"tvm", "onnxruntime"}
    assert all(len(r) == 3 and min(r) > 0 for r in frame["rounds_us"])
    data = load_claims_data("host", predict=False)
    mfn = data.networks["mobilefacenet"]
    tvm = frame[(frame["network"] == "mobilefacenet") & (frame["engine"] == "tvm")]["rounds_us"].iloc[0]
    ort = frame[(frame["network"] == "mobilefacenet") & (frame["engine"] == "onnxruntime")]["rounds_us"].iloc[0]
    assert mfn.tvm_us == pytest.approx(np.median(tvm)) and mfn.ort_us == pytest.approx(np.median(ort))
    assert mfn.engine_ratio == pytest.approx(np.median(np.asarray(tvm) / np.asarray(ort)))
    assert run.run_id in data.rounds_run


def test_rounds_run_on_the_host_only(latency_db):
    from hwface.workflows.zoo_rounds import time_zoo_in_rounds

    with pytest.raises(HwfaceError, match="on the host"):
        time_zoo_in_rounds("android-arm64", models=["mobilefacenet"])
