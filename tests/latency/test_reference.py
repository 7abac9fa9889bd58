"""Drift correction: rows scaled by canonical / their own reference (hwface.latency.reference)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hwface.latency.reference import (ReferenceState, canonical_state, normalized_networks, normalized_rows,
                                      reference_us, undisturbed, was_drifted)


def _ref(kernel_us: float, network_us: float) -> str:
    return json.dumps({"kernel_us_before": kernel_us * 0.99, "kernel_us_after": kernel_us * 1.01,
                       "network_us_before": network_us, "network_us_after": network_us, "attempts": 1})


def test_reference_is_the_mean_of_before_and_after():
    assert reference_us(_ref(100.0, 2000.0), "kernel") == pytest.approx(100.0)
    assert reference_us(json.loads(_ref(100.0, 2000.0)), "network") == pytest.approx(2000.0)
    assert np.isnan(reference_us(None, "kernel")) and np.isnan(reference_us("{}", "network"))


def test_rows_of_a_slower_state_scale_back_to_the_canonical_one():
    rows = pd.DataFrame({"key": ["a", "b", "c", "d"], "median_us": [10.0, 10.0, 11.5, 7.0],
                         "p10_us": [9.0, 9.0, 10.35, 6.0], "p90_us": [11.0, 11.0, 12.65, 8.0],
                         "reference": [_ref(100, 2000), _ref(100, 2000), _ref(115, 2300), None]})
    state = canonical_state(rows)
    assert state == ReferenceState(pytest.approx(100.0), pytest.approx(2000.0))
    out = normalized_rows(rows, state)
    # the row measured 15% slower comes back to 10 us; a row without a reference stays as measured
    assert list(out["median_us"]) == pytest.approx([10.0, 10.0, 10.0, 7.0])
    assert out["p10_us"][2] == pytest.approx(9.0) and list(rows["median_us"]) == [10.0, 10.0, 11.5, 7.0]
    assert normalized_rows(rows, None) is rows


def test_networks_scale_end_to_end_and_kernel_sum_by_their_own_batches():
    nets = pd.DataFrame({"median_us": [1150.0, 900.0], "kernel_sum_us": [1000.0, 800.0],
                         "reference": [{"end_to_end": json.loads(_ref(100, 2300)), "kernels": json.loads(_ref(125, 2000))},
                                       None]})
    out = normalized_networks(nets, ReferenceState(100.0, 2000.0))
    assert list(out["median_us"]) == pytest.approx([1000.0, 900.0])  # by the end-to-end batch's network reference
    assert list(out["kernel_sum_us"]) == pytest.approx([800.0, 800.0])  # by the kernel batch's kernel reference


def test_rows_whose_batch_was_kept_drifted_are_left_out():
    kept = json.dumps({**json.loads(_ref(100, 2000)), "drifted": False})
    moved = {**json.loads(_ref(150, 2000)), "drifted": True}
    network = {"end_to_end": json.loads(kept), "kernels": moved}  # a network's record: one batch of two drifted
    rows = pd.DataFrame({"median_us": [1.0, 2.0, 3.0, 4.0], "reference": [kept, json.dumps(moved), None, network]})
    assert [was_drifted(r) for r in rows["reference"]] == [False, True, False, True]
    out, left_out = undisturbed(rows)
    assert left_out == 2 and list(out["median_us"]) == [1.0, 3.0]
