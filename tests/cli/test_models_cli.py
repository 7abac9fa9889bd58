"""`hwface models`, `hwface inspect`: the CLI contract."""

from __future__ import annotations

import json

from hwface.models import list_models
from tests.conftest import assert_one_line_error

KEYS = {"name", "paper", "input_size", "embedding_dim", "params", "madds", "size_mb", "paper_params", "paper_madds"}


def test_models_json_lists_every_network(cli):
    res = cli("models", "--format", "json")
    assert res.code == 0, res.err
    rows = json.loads(res.out)
    assert [r["name"] for r in rows] == list_models()
    for r in rows:
        assert KEYS <= set(r)
        assert len(r["input_size"]) == 2 and r["params"] > 0 and r["madds"] > 0
    mfn = next(r for r in rows if r["name"] == "mobilefacenet")
    assert mfn["paper_params"] == 0.99e6 and mfn["input_size"] == [112, 112]


def test_models_table(cli):
    res = cli("models")
    assert res.code == 0 and "seesaw_share" in res.out and "mobilefacenet" in res.out


def test_inspect_json_sums_to_summary(cli):
    from hwface.analysis import summarize

    res = cli("inspect", "seesaw_share", "--format", "json")
    assert res.code == 0, res.err
    rows = json.loads(res.out)
    s = summarize("seesaw_share")
    assert sum(r["madds"] for r in rows) == s.madds
    assert sum(r["params"] for r in rows) == s.params
    assert {"name", "op", "input_shape", "output_shape", "kernel", "stride", "groups", "params", "madds"} <= set(rows[0])


def test_inspect_csv(cli):
    res = cli("inspect", "mobilefacenet", "--format", "csv")
    header = res.out.splitlines()[0].split(",")
    assert res.code == 0 and header[:3] == ["name", "op", "input_shape"]


def test_unknown_model_suggests_close_names(cli_proc):
    res = cli_proc("inspect", "mobilefacenett")
    assert_one_line_error(res, "unknown model", "mobilefacenet")


def test_bad_input_size_is_one_line_error(cli_proc):
    res = cli_proc("inspect", "mobilefacenet", "--input-size", "100", "100")
    assert_one_line_error(res, "cannot take")
