"""Kernel sampler: every kind builds, a tiny budget measures and stores, a rerun resumes, the tuned regime tunes first."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwface.latency.key import layer_key
from hwface.latency.sampler import KINDS, SampleConfig, config_onnx, draw, neighbours, sample, worst_predicted
from hwface.latency.store import LatencyStore, db_path
from tests.conftest import assert_one_line_error


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_and_fuses_into_keyed_kernels(kind):
    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.latency.kernels import map_to_onnx
    from hwface.targets import load_target

    cfg = draw(kind, np.random.default_rng(3))
    model = config_onnx(cfg)
    calls = [c for c in map_to_onnx(fuse(import_onnx(model), load_target("host").tvm_target()), model)
             if not c.runs_as_view]
    assert calls
    keys = [layer_key(c) for c in calls]
    expected = {"conv": {"conv", "pwconv"}, "dwconv": {"dwconv"}, "pwconv": {"pwconv"}, "gpwconv": {"gpwconv"},
                "fc": {"fc"}, "gdconv": {"gdconv"}}.get(kind)
    if expected:
        assert keys[0].op in expected, (cfg, keys[0])


def test_activations_are_named():
    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.latency.kernels import map_to_onnx
    from hwface.targets import load_target

    for act in ("relu", "prelu", "swish", "hardswish", "sigmoid"):
        model = config_onnx(SampleConfig.make("dwconv", hw=7, c=16, k=3, s=1, act=act))
        (call,) = map_to_onnx(fuse(import_onnx(model), load_target("host").tvm_target()), model)
        assert layer_key(call).activation == act, (act, call.relax_ops)


def test_densification_picks_the_worst_fitted_points():
    rng = np.random.default_rng(0)
    cfgs = [SampleConfig.make("pwconv", hw=14, cin=c, cout=64, act="none", residual=0) for c in (16, 32, 64, 128, 256,
                                                                                            384, 512)]
    lat = [c.p["cin"] * 1.0 for c in cfgs]
    lat[3] *= 10  # an outlier the model cannot fit
    assert worst_predicted(list(zip(cfgs, lat)), 1) == [cfgs[3]]
    near = neighbours(cfgs[3], rng)
    assert near and all(n.kind == "pwconv" and n != cfgs[3] for n in near)


@pytest.mark.slow  # real sampling
def test_sample_tiny_budget_stores_and_resumes(latency_db, quick_guard):
    kw = dict(target="host", kinds=("activation", "add", "pool"), batch=3, repeat=2, min_repeat_ms=1,
              adaptive_fraction=0.34, guard=quick_guard)
    r = sample(n=3, **kw)
    assert (r.measured_configs, r.failed_configs, r.already_done) == (3, 0, 0) and r.stored_kernels >= 3
    with LatencyStore(db_path("host")) as db:
        frame = db.frame()
    assert set(frame["regime"]) == {"default"} and set(frame["tuned"]) == {0}
    assert frame["source"].str.startswith("sample:").all() and frame["trials_per_kernel"].isna().all()
    assert set(frame["fingerprint"]) == {r.fingerprint} and r.fingerprint
    refs = [json.loads(x) for x in frame["reference"]]
    assert all(x["kernel_us_before"] > 0 and x["network_us_after"] > 0 and x["attempts"] >= 1 for x in refs)
    r2 = sample(n=3, **kw)
    assert (r2.measured_configs, r2.already_done) == (0, 3)
    r3 = sample(n=5, **kw)
    assert r3.already_done == 3 and r3.measured_configs + r3.failed_configs == 2 and r3.adaptive_configs >= 1


@pytest.mark.slow  # real sampling
def test_tuned_regime_tunes_each_kernel_and_states_its_budget(latency_db, quick_guard):
    # two batches: the second is tuned on the device the first was timed on
    r = sample(target="host", kinds=("dwconv",), n=2, regime="tuned", trials_per_kernel=2, batch=1, repeat=2,
               min_repeat_ms=1, adaptive_fraction=0, guard=quick_guard)
    assert (r.measured_configs, r.failed_configs) == (2, 0) and r.stored_kernels >= 2
    with LatencyStore(db_path("host")) as db:
        frame = db.frame()
    assert set(frame["regime"]) == {"tuned"} and set(frame["tuned"]) == {1}
    assert set(frame["trials_per_kernel"]) == {2}
    assert frame["tuning_db_hash"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert sample(target="host", kinds=("dwconv",), n=2, regime="tuned", trials_per_kernel=2).already_done == 2


def test_bad_sampler_input_is_one_line(latency_db, cli):
    assert_one_line_error(cli("sample", "--n", "1", "--kinds", "nosuch"), "nosuch")
    assert_one_line_error(cli("sample", "--n", "0"), "--n")
    assert not db_path("host").exists()
