"""The latency predictor on a small seeded fixture database: features, training, save/load, refusals, eval, the split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwface.latency.features import FEATURES, features
from hwface.latency.fingerprint import current_fingerprint
from hwface.latency.metrics import accuracy, coverage
from hwface.latency.overhead import fit_overhead, network_weight_mb
from hwface.latency.predictor import Predictor, PredictorError, predictor_dir
from hwface.latency.store import LatencyStore, db_path
from hwface.targets import load_target
from tests.conftest import assert_one_line_error
from tests.latency.synthetic import _conv_key, _keys, _m, _synthetic_us, fill_fixture_db


@pytest.fixture
def fixture_db(latency_db):
    """Training rows, three training networks, four held-out networks (one key only they have), all current."""
    return fill_fixture_db()


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
    assert o.a_us == 0 and o.b_us == pytest.approx(1.0) and o.networks == 3 and o.of(7, 0.0) == pytest.approx(7.0)
    assert o.r == pytest.approx(0.0, abs=1e-9)


def test_overhead_has_a_share_of_the_kernel_sum_and_a_cost_per_call():
    sums, calls = np.array([4_000.0, 9_000.0, 15_000.0, 6_000.0]), np.array([138, 51, 170, 84])
    o = fit_overhead(sums, sums * 1.25 + 2.0 * calls, calls)  # tuned networks: colder caches, then the VM's calls
    assert o.r == pytest.approx(0.25) and o.b_us == pytest.approx(2.0) and o.of(10, 1_000.0) == pytest.approx(270.0)
    assert o.rel_p10 == pytest.approx(0.0, abs=1e-9) and o.rel_p90 == pytest.approx(0.0, abs=1e-9)


def test_overhead_takes_a_weights_term_only_when_it_predicts_left_out_networks_better():
    rng = np.random.default_rng(3)
    sums, calls, mb = rng.uniform(3e3, 15e3, 8), rng.integers(30, 280, 8), rng.uniform(2.0, 30.0, 8)
    cold = sums * 1.1 + 1.0 * calls + 60.0 * mb  # weights fetched at 60 us a megabyte in sequence
    o = fit_overhead(sums, cold, calls, mb)
    assert o.w_us_per_mb == pytest.approx(60.0) and o.r == pytest.approx(0.1) and o.b_us == pytest.approx(1.0)
    assert o.of(10, 1_000.0, 2.0) == pytest.approx(10 + 100 + 120)
    # no weights cost, timing noise only: where the noise happens to give w > 0 in the fit itself, the
    # left-out errors mostly refuse the term
    from hwface.latency.overhead import _fit

    kept = chance = 0
    for seed in range(20):
        noise = np.random.default_rng(seed).uniform(0.96, 1.04, 8)
        hot = (sums * 1.1 + 1.0 * calls) * noise
        if _fit(("b", "r", "w"), sums, hot, calls, mb)["w"] > 0:
            chance += 1
            kept += fit_overhead(sums, hot, calls, mb).w_us_per_mb > 0
    assert chance >= 5 and kept <= chance // 2
    assert fit_overhead(sums[:4], cold[:4], calls[:4], mb[:4]).w_us_per_mb == 0.0  # too few networks to tell


def test_the_overhead_band_is_that_of_networks_left_out_of_the_fit():
    from hwface.latency.overhead import _predicted

    rng = np.random.default_rng(5)
    sums, calls = rng.uniform(3e3, 15e3, 6), rng.integers(30, 280, 6)
    e2e = (sums * 1.3 + 2.0 * calls) * rng.uniform(0.9, 1.1, 6)
    o = fit_overhead(sums, e2e, calls)
    own = e2e / _predicted({"b": o.b_us, "r": o.r}, sums, calls, np.zeros(6)) - 1.0
    assert o.rel_p90 - o.rel_p10 > np.percentile(own, 90) - np.percentile(own, 10)  # wider than the fit's own


def test_a_networks_weights_count_every_call():
    key = _conv_key("pwconv", 64, 128, 14, 1, 1)
    one = network_weight_mb([(key.to_str(), 1)])
    assert one == pytest.approx(4 * (64 * 128 + 2 * 128) / 1e6)  # float32 weights, a bias and a PReLU slope
    assert network_weight_mb([(key.to_str(), 3)]) == pytest.approx(3 * one)


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
    folder = predictor_dir("host", "default", fixture_db.digest())
    train("host", "default", mode="per_kind")
    assert len(list(folder.glob("point.*.ubj"))) > 1
    train("host", "default", mode="global")  # retrained in another mode: no per-kind model left over
    assert sorted(p.name for p in folder.glob("point.*.ubj")) == ["point.all.ubj"]
    train("host", "default", mode=r.mode)
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
    legacy = {k: v for k, v in side["overhead"].items() if k != "r"}  # written before the overhead had r
    (folder / "sidecar.json").write_text(json.dumps({**side, "overhead": legacy}))
    old = Predictor.load(folder)
    assert old.overhead.r == 0.0 and old.overhead.of(10, 1e6) == pytest.approx(legacy["b_us"] * 10)
    (folder / "sidecar.json").write_text(json.dumps({**side, "overhead": {**side["overhead"], "q": 1.0}}))
    assert_one_line_error(cli("predictor", "eval"), "corrupt predictor", "TypeError")
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


def test_rows_and_networks_kept_drifted_neither_train_nor_answer(fixture_db):
    from dataclasses import replace

    from hwface.latency.lookup import open_lookup
    from hwface.latency.store import NetworkMeasurement
    from hwface.workflows.predict import train

    drifted = {"kernel_us_before": 100.0, "kernel_us_after": 180.0, "network_us_before": 2000.0,
               "network_us_after": 3600.0, "attempts": 4, "drifted": True}
    with LatencyStore(db_path("host")) as db:
        measured = set(db.frame(regime="default")["key"])
        keys = [k for k in _keys(np.random.default_rng(11), 60) if k.to_str() not in measured]
        stored = db.add(replace(_m(k, _synthetic_us(k) * 10, fixture_db, source="sample:drifted"),
                                reference=drifted) for k in keys)
        net = db.networks_frame(regime="default", split="train").iloc[0]
        db.add_network(NetworkMeasurement(
            name="zoo-drifted", origin="nas", target="host", device_key="host", regime="default",
            fingerprint=fixture_db.digest(), split="train", kernel_calls=int(net["kernel_calls"]),
            kernel_sum_us=float(net["kernel_sum_us"]), median_us=float(net["median_us"]) * 10, p10_us=1.0,
            p90_us=1.0, cv=0.01, samples=5, kernels=net["kernels"], madds=int(net["madds"]),
            reference={"kernels": {**drifted, "drifted": False}, "end_to_end": drifted}))
    r = train("host", "default")
    assert (r.rows, r.skipped_drifted, r.networks, r.skipped_drifted_networks) == (360, stored, 3, 1)
    assert stored >= 10
    lookup = open_lookup(load_target("host"), "default")
    assert all(lookup.get(k.to_str()) is None for k in keys)  # predicted, not answered with the drifted timing
    assert lookup.predictor.overhead.b_us == pytest.approx(0.5)  # the 10x network did not fit the overhead
