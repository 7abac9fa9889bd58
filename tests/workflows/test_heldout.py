"""Random arch specs: a held-out network and a training network never share a seed, and each says its split."""

from __future__ import annotations

import pytest

from hwface.errors import HwfaceError


@pytest.mark.parametrize("split, first", [("heldout", "nas-100000"), ("train", "nas-200000")])
def test_each_split_measures_its_own_seeds_and_stores_its_split(split, first, monkeypatch):
    import onnx

    from hwface.workflows import heldout

    jobs = []
    monkeypatch.setattr(heldout, "measure_networks", lambda spec, regime, js, progress: jobs.extend(js))
    heldout.measure_random_networks("host", "default", n=2, split=split)
    assert [j.name for j in jobs] == [first, first[:-1] + "1"]
    args = jobs[0].prepare()  # exports the network: the spec of that seed, marked with the split
    assert args["split"] == split and args["origin"] == "nas"
    onnx.checker.check_model(onnx.load(args["onnx_path"]))
    from hwface.nas import DEFAULT_SPACE, sample_arch

    assert args["arch_spec"] == sample_arch(DEFAULT_SPACE, seed=int(first[4:])).to_dict()


@pytest.mark.parametrize("regime, split, match", [("zoo", "train", "default or tuned"),
                                                   ("tuned", "test", "unknown split")])
def test_a_bad_regime_or_split_is_refused_before_any_measurement(regime, split, match, latency_db):
    from hwface.workflows.heldout import measure_random_networks

    with pytest.raises(HwfaceError, match=match):
        measure_random_networks("host", regime, n=1, split=split)
    assert not latency_db.exists()
