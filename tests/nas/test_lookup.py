"""LatencyModel on a small seeded fixture database: measured keys as stored, the rest predicted, batches, OFA dicts."""

from __future__ import annotations

import numpy as np
import pytest

from hwface.nas import DEFAULT_SPACE
from hwface.nas.space import draw_arch
from tests.latency.synthetic import _keys


@pytest.fixture
def model(fixture_model):
    return fixture_model


def test_measured_keys_answer_as_stored_and_others_are_predicted(model):
    from hwface.latency.store import LatencyStore, db_path

    with LatencyStore(db_path("host")) as db:
        frame = db.frame()
    stored = frame[frame["split"] == "train"].groupby("key")["median_us"].median()
    unseen = [k for k in _keys(np.random.default_rng(5), 300) if k.to_str() not in set(frame["key"])][:20]
    asked = list(stored.index[:20]) + unseen
    batch = model.layers(asked)
    assert batch.measured.tolist() == [True] * 20 + [False] * len(unseen)
    assert np.allclose(batch.latency_us[:20], stored.iloc[:20].to_numpy(), rtol=0, atol=0)
    one_by_one = [model.layer(k) for k in asked]
    assert [a["latency_us"] for a in one_by_one] == pytest.approx(batch.latency_us.tolist(), rel=1e-12)
    assert all(a["source"] == ("measured" if i < 20 else "predicted") for i, a in enumerate(one_by_one))
    assert np.all(batch.low_us <= batch.latency_us) and np.all(batch.latency_us <= batch.high_us)


def test_networks_from_specs_dicts_and_ofa_dicts(model):
    import random

    spec = draw_arch(DEFAULT_SPACE, random.Random(0))
    est = model.network(spec)
    assert est.total_us == pytest.approx(model.network(spec.to_dict()).total_us)
    assert est.low_us <= est.total_us <= est.high_us and est.kernel_calls >= spec.n_blocks
    assert est.measured_kernels + est.predicted_kernels == len(est.kernels)
    assert est.total_us == pytest.approx(est.kernel_sum_us + est.overhead_us)
    ofa = {"ks": [3, 5, 7, 3] * 5, "e": [3, 4, 6, 3] * 5, "d": [2, 3, 4, 2, 2], "r": [112]}
    small = dict(ofa, d=[1, 1, 1, 1, 1])
    assert model.get_efficiency(ofa) > model.get_efficiency(small) > 0  # milliseconds, more blocks cost more


def test_bad_networks_say_what_is_wrong(model):
    from hwface.errors import HwfaceError
    from hwface.nas.spec import ArchSpecError

    with pytest.raises(ArchSpecError, match="ks"):
        model.get_efficiency({"ks": [4] * 20, "e": [3] * 20, "d": [2] * 5})
    with pytest.raises(ArchSpecError, match="stages"):
        model.network({"input_size": [112, 112]})
    with pytest.raises(HwfaceError, match="unknown model"):
        model.network("nosuch")
    with pytest.raises(HwfaceError, match="no ONNX file"):
        model.network("missing.onnx")
