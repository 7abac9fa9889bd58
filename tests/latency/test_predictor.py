"""The latency predictor on a small seeded fixture database: features, training, save/load, refusals, eval, the split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwface.latency.features import FEATURES, features, key_madds
from hwface.latency.fingerprint import current_fingerprint
from hwface.latency.key import LayerKey
from hwface.latency.metrics import accuracy, coverage
from hwface.latency.predictor import Predictor, PredictorError, fit_overhead, predictor_dir
from hwface.latency.store import LatencyStore, Measurement, NetworkMeasurement, db_path
from hwface.targets import load_target
from tests.conftest import assert_one_line_error


def _conv_key(op: str, c_in: int, c_out: int, hw: int, k: int, s: int) -> LayerKey:
    groups = c_in if op == "dwconv" else 1
    out = (1, c_out, hw // s, hw // s)
    return LayerKey(op=op, fused=("conv2d", "add", "prelu"), input_shapes=((1, c_in, hw, hw),), output_shape=out,
                    kernel=(k, k), stride=(s, s), padding=(k // 2,) * 4, dilation=(1, 1), groups=groups,
                    activation="prelu")


def _synthetic_us(key: LayerKey) -> float:
    """A smooth 'device': 2 us + 1 ns a multiply-add + 0.2 ns a byte moved."""
    f = features(key)
    return 2.0 + key_madds(key) * 1e-3 + (f["bytes_read"] + f["bytes_written"]) * 2e-4


def _keys(rng, n: int) -> list[LayerKey]:
    out = []
    for _ in range(n):
        op = rng.choice(["conv", "dwconv", "pwconv"])
        c = int(rng.choice([16, 24, 32, 48, 64, 96, 128, 192, 256]))
        hw = int(rng.choice([7, 14, 28, 56]))
        if op == "dwconv":
            out.append(_conv_key(op, c, c, hw, int(rng.choice([3, 5, 7])), int(rng.choice([1, 2]))))
        elif op == "pwconv":
            out.append(_conv_key(op, c, int(rng.choice([16, 32, 64, 128, 256])), hw, 1, 1))
        else:
            out.append(_conv_key(op, c, int(rng.choice([16, 32, 64])), hw, 3, int(rng.choice([1, 2]))))
    return list(dict.fromkeys(out))


def _m(key: LayerKey, us: float, fp, split: str = "train", source: str = "sample:x") -> Measurement:
    return Measurement(key=key, target="host", device_key="host", tvm_version="0.27.0.post1", hwface_version="0.4.0",
                       tuned=False, regime="default", median_us=us, p10_us=us * 0.97, p90_us=us * 1.03, cv=0.01,
                       samples=5, source=source, fingerprint=fp, split=split, madds=key_madds(key))


@pytest.fixture
def fixture_db(latency_db):
    """Training rows, three training networks, four held-out networks (one key only they have), all current."""
    rng = np.random.default_rng(0)
    fp = current_fingerprint(load_target("host"))
    keys = _keys(rng, 2000)
    train, held_only = keys[:360], keys[360:364]
    with LatencyStore(db_path("host")) as db:
        db.add(_m(k, _synthetic_us(k) * rng.uniform(0.98, 1.02), fp) for k in train)
        for i, split in enumerate(["train"] * 3 + ["heldout"] * 4):
            ks = [train[j] for j in rng.choice(len(train), 12, replace=False)] + \
                ([held_only[i - 3]] if split == "heldout" else [])
            calls = [[k.to_str(), int(rng.integers(1, 3))] for k in ks]
            if split == "heldout":
                db.add(_m(k, _synthetic_us(k), fp, split="heldout", source=f"nas-{i}") for k in ks)
            ksum = sum(_synthetic_us(LayerKey.from_str(k)) * n for k, n in calls)
            n_calls = sum(n for _, n in calls)
            db.add_network(NetworkMeasurement(
                name=f"nas-{i}" if split == "heldout" else f"zoo-{i}", origin="nas", target="host", device_key="host",
                regime="default", fingerprint=fp.digest(), split=split, kernel_calls=n_calls, kernel_sum_us=ksum,
                median_us=ksum + 0.5 * n_calls, p10_us=ksum, p90_us=ksum, cv=0.01, samples=5, kernels=calls,
                madds=sum(key_madds(LayerKey.from_str(k)) * n for k, n in calls)))
    return fp


def test_features_are_named_and_follow_the_key():
    k = _conv_key("dwconv", 64, 64, 28, 5, 2)
    f = features(k)
    assert list(f) == list(FEATURES)
    assert f["op_dwconv"] == 1 and f["op_conv"] == 0 and f["kh"] == 5 and f["sh"] == 2 and f["groups"] == 64
    assert f["madds"] == 14 * 14 * 64 * 25 and f["act_prelu"] == 1 and f["n_add"] == 1
    assert f["weight_elems"] == 64 * 25 + 2 * 64 and f["bytes_written"] == 4 * 64 * 14 * 14


def test_metrics_against_a_case_computed_by_hand():
    m = accuracy([110.0, 85.5, 300.0, 40.0], [100.0, 90.0, 200.0, 50.0])
    # relative errors +10%, -5%, +50%, -20%
    assert m["within_5"] == 0.25 and m["within_10"] == 0.5 and m["within_15"] == 0.5
    assert m["rmspe"] == pytest.approx(np.sqrt((0.1 ** 2 + 0.05 ** 2 + 0.5 ** 2 + 0.2 ** 2) / 4))
    assert m["rmse"] == pytest.approx(np.sqrt((100 + 4.5 ** 2 + 10000 + 100) / 4))
    assert m["kendall_tau"] == pytest.approx(1.0)  # same order
    assert coverage([90, 90], [110, 95], [100, 100]) == 0.5


def test_overhead_is_a_cost_per_kernel_call():
    o = fit_overhead([100, 200, 300], [100 + 10, 200 + 20, 300 + 40], [10, 20, 40])
    assert o.a_us == 0 and o.b_us == pytest.approx(1.0) and o.networks == 3 and o.of(7) == pytest.approx(7.0)


def test_train_predict_save_load_and_the_heldout_split(fixture_db, cli):
    from hwface.workflows.predict import evaluate, train

    r = train("host", "default")
    assert r.rows == 360 and r.networks == 3 and r.mode in ("global", "per_kind") and r.seconds > 0
    pred = Predictor.load(predictor_dir("host", "default", fixture_db.digest()), fingerprint=fixture_db.digest())
    assert pred.rows == 360  # not one held-out row entered training
    assert pred.overhead.a_us == 0 and pred.overhead.b_us == pytest.approx(0.5)
    keys = _keys(np.random.default_rng(7), 60)
    point, low, high = pred.predict_us(keys)
    truth = np.array([_synthetic_us(k) for k in keys])
    assert accuracy(point, truth)["within_15"] >= 0.8 and np.all(low <= point) and np.all(point <= high)
    again = Predictor.load(predictor_dir("host", "default", fixture_db.digest()))
    assert np.array_equal(again.predict_us(keys)[0], point)
    report = evaluate("host", "default")
    assert report.heldout_networks == 4 and set(report.network) == {"predictor", "sum_of_measured_kernels",
                                                                     "madds_only"}
    assert report.network["sum_of_measured_kernels"]["within_5"] == 1.0  # additive by construction
    assert all(p["predicted_kernels"] == 1 for p in report.points)  # the key only held-out networks have
    res = cli("predictor", "eval", "--format", "json")
    assert res.code == 0 and json.loads(res.out)["heldout_networks"] == 4


def test_mismatched_or_corrupt_predictors_are_refused_in_one_line(fixture_db, cli):
    from hwface.workflows.predict import train

    folder = predictor_dir("host", "default", fixture_db.digest())
    assert_one_line_error(cli("predictor", "eval"), "no trained predictor", "hwface predictor train")
    train("host", "default")
    with pytest.raises(PredictorError, match="fingerprint"):
        Predictor.load(folder, fingerprint="0" * 16)
    side = json.loads((folder / "sidecar.json").read_text())
    (folder / "sidecar.json").write_text(json.dumps({**side, "features": side["features"][:-1]}))
    assert_one_line_error(cli("predictor", "eval"), "other features", "hwface predictor train")
    (folder / "sidecar.json").write_text(json.dumps(side))
    (folder / "interval.ubj").write_bytes(b"not a model")
    assert_one_line_error(cli("predictor", "eval"), "corrupt predictor")


def test_no_current_data_says_which_fingerprint_and_command(latency_db, cli):
    with LatencyStore(db_path("host")):
        pass
    assert_one_line_error(cli("predictor", "train"), "no current default rows", "hwface sample")


def test_predict_bad_input_is_one_line(latency_db, cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"input_size": [112, 112], "stem": {}}')
    assert_one_line_error(cli("predict", "--model", "nosuch"), "nosuch")
    assert_one_line_error(cli("predict", "--arch", str(bad)), "stages", "missing")
    assert_one_line_error(cli("predict", "--arch", str(tmp_path / "none.json")), "cannot read arch spec")
    assert_one_line_error(cli("predict", "--model", "mobilefacenet"), "no trained predictor")


def test_another_devices_data_trains_and_answers_only_when_asked_by_digest(latency_db, cli):
    from dataclasses import replace

    from hwface.workflows.predict import train

    today = current_fingerprint(load_target("host"))
    other = replace(today, tvm_target=today.tvm_target.replace('"kind": "llvm"', '"kind": "llvm", "mcpu": "other"'))
    assert other.relation_to(today) == "other device"
    rng = np.random.default_rng(1)
    with LatencyStore(db_path("host")) as db:
        stored = db.add(_m(k, _synthetic_us(k), other) for k in _keys(rng, 200))
    assert_one_line_error(cli("predictor", "train"), "no current default rows", "hwface sample")
    assert_one_line_error(cli("predictor", "train", "--fingerprint", "zz"), "matches no fingerprint",
                          other.digest())
    r = train("host", "default", fingerprint=other.digest()[:6])
    assert r.fingerprint == other.digest() and r.rows == stored > 100
    assert r.path.endswith(f"host.default.{other.digest()}.predictor")
    res = cli("db", "stats")
    assert res.code == 0 and f"other device {other.digest()}" in res.out
