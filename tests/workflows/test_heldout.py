"""Random arch specs: a held-out network and a training network never share a seed, and each says its split."""

from __future__ import annotations

import pytest

from hwface.errors import HwfaceError


def test_the_splits_draw_disjoint_seeds_and_store_their_split(tmp_path):
    import onnx

    from hwface.workflows.heldout import SPLIT_SEEDS, _spec_args, heldout_name

    heldout, train = SPLIT_SEEDS["heldout"], SPLIT_SEEDS["train"]
    assert train - heldout >= 100_000  # room for 100,000 held-out networks before a name could repeat
    args = _spec_args(train, "train", tmp_path)
    assert args["split"] == "train" and args["origin"] == "nas"
    assert args["arch_spec"] != _spec_args(heldout, "heldout", tmp_path)["arch_spec"]
    onnx.checker.check_model(onnx.load(args["onnx_path"]))
    assert heldout_name(train) == f"nas-{train}"


@pytest.mark.parametrize("regime, split, match", [("zoo", "train", "default or tuned"),
                                                   ("tuned", "test", "unknown split")])
def test_a_bad_regime_or_split_is_refused_before_any_measurement(regime, split, match, latency_db):
    from hwface.workflows.heldout import measure_random_networks

    with pytest.raises(HwfaceError, match=match):
        measure_random_networks("host", regime, n=1, split=split)
    assert not latency_db.exists()
