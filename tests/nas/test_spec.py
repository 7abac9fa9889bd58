"""Arch specs: JSON round trip, validation naming the field, zoo specs reproducing the zoo, sampling."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hwface.analysis import count_params, layer_table
from hwface.errors import HwfaceError
from hwface.export import example_input, export_model
from hwface.models import UnknownModelError, create_model, get_model_info, list_models
from hwface.nas import (
    DEFAULT_SPACE,
    MAX_BLOCKS,
    ZOO_NOT_FITTING,
    ArchSpec,
    ArchSpecError,
    StageSpec,
    build,
    export_spec,
    sample_arch,
    spec_madds,
    zoo_spec,
    zoo_spec_names,
)
from hwface.nas.build import build_untrained
from hwface.nas.space import SearchSpace, SearchSpaceError, draw_arch

FITTING = zoo_spec_names()
MUST_FIT = {"mobilefacenet", "seesaw_share", "seesaw_shuffle", "mbconv_3x3", "mbconv_5x5", "mbconv_7x7",
            "frmbconv_7x7", "frmbconv_3x3", "frmbconv_se_pre", "frmbconv_fc512", "frmbconv_gdc128"}
ZOO_WIDTHS = {16, 24, 32, 48, 64, 96, 104, 128, 144, 160, 192, 200, 256, 320}
DOC = Path(__file__).resolve().parents[2] / "docs" / "nas.md"


def _rows(model, size):
    """Layer table without names and without Identity placeholders (ConvBNAct(act="none") has one)."""
    return [(r.op, r.input_shape, r.output_shape, r.kernel, r.stride, r.groups, r.params, r.madds)
            for r in layer_table(model, size) if r.op != "identity"]


# ---------------------------------------------------------------- zoo


def test_every_zoo_network_fits_or_says_why():
    names = set(list_models())
    assert MUST_FIT <= set(FITTING)
    assert set(FITTING) | set(ZOO_NOT_FITTING) == names
    assert not set(FITTING) & set(ZOO_NOT_FITTING)
    assert all(zoo_spec(n) is None and ZOO_NOT_FITTING[n] for n in ZOO_NOT_FITTING)
    with pytest.raises(UnknownModelError):
        zoo_spec("mobilefacenett")


@pytest.mark.parametrize("name", FITTING)
def test_zoo_spec_reproduces_zoo_network(name):
    """Same layers, shapes, params and MAdds as hwface.analysis counts; the zoo's weights give the same output."""
    info = get_model_info(name)
    spec = zoo_spec(name)
    assert spec.input_size == info.input_size and spec.embedding == info.embedding_dim
    assert spec.total_stride == info.total_stride
    zoo = create_model(name)
    net = build_untrained(spec)
    assert count_params(net) == count_params(zoo)
    rows = _rows(net, spec.input_size)
    assert rows == _rows(zoo, spec.input_size)
    assert sum(r[-1] for r in rows) == spec_madds(spec)
    zoo_state = list(zoo.state_dict().values())  # same layers in the same order: load by position
    assert [t.shape for t in zoo_state] == [t.shape for t in net.state_dict().values()]
    net.load_state_dict(dict(zip(net.state_dict(), zoo_state)))
    x = torch.from_numpy(example_input((2, 3, *spec.input_size)))
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), zoo(x), rtol=1e-5, atol=1e-5)


def test_zoo_spec_takes_an_input_size():
    spec = zoo_spec("mobilefacenet", input_size=(96, 96))
    assert spec.feature_size == (6, 6)
    assert spec.to_dict() == {**zoo_spec("mobilefacenet_96x96").to_dict()}


# ---------------------------------------------------------------- JSON


@pytest.mark.parametrize("name", ["seesaw_share", "dw_seesaw_v2", "mmobilefacenet", "frmbconv_gdc128"])
def test_json_round_trip_zoo(name):
    spec = zoo_spec(name)
    text = spec.to_json()
    assert ArchSpec.from_json(text) == spec
    assert ArchSpec.from_dict(json.loads(text)) == spec
    assert ArchSpec.from_json(spec.to_json(indent=None)).to_json() == text


def test_json_round_trip_sampled():
    rng = random.Random(7)
    for _ in range(20):
        spec = draw_arch(DEFAULT_SPACE, rng)
        assert ArchSpec.from_json(spec.to_json()) == spec
        assert hash(ArchSpec.from_dict(spec.to_dict())) == hash(spec)


def test_docs_example_is_seesaw_share():
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/nas.md has no JSON example"
    assert ArchSpec.from_json(blocks[0]) == zoo_spec("seesaw_share")


# ---------------------------------------------------------------- validation


def _edit(path: str, value, delete: bool = False) -> dict:
    """seesaw_share's dict with one field (dotted path, ``stages[i]`` indexing) changed or deleted."""
    d = copy.deepcopy(zoo_spec("seesaw_share").to_dict())
    *parents, last = re.findall(r"[a-z_]+|\[\d+\]", path)
    node = d
    for p in parents:
        node = node[int(p[1:-1])] if p.startswith("[") else node[p]
    if delete:
        del node[last]
    elif last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return d


BAD = [
    ("stages[2].kernel", 4, "stages[2].kernel", "allowed: 3, 5, 7"),
    ("stages[3].act", "gelu", "stages[3].act", '"hardswish"'),
    ("stages[0].block", "resnet", "stages[0].block", '"mbconv", "frmbconv"'),
    ("stages[1].stride", 3, "stages[1].stride", "allowed: 1, 2"),
    ("stages[1].stride", True, "stages[1].stride", "allowed: 1, 2"),
    ("stages[0].width", 0, "stages[0].width", "positive integer"),
    ("stages[0].width", "64", "stages[0].width", "positive integer"),
    ("stages[4].width", 130, "stages[4].width", "divisible by 4"),
    ("stages[1].depth", -1, "stages[1].depth", "positive integer"),
    ("stages[0].expansion", 0, "stages[0].expansion", "(0, 8]"),
    ("stages[0].se_placement", "post", "stages[0].se_placement", 'allowed: "pre"'),
    ("stages[0].se", "yes", "stages[0].se", "allowed: false, true"),
    ("stages[1].skip", "pool_conv", "stages[1].skip", "stride-2"),
    ("stages[5].kernal", 3, "stages[5].kernal", "unknown field"),
    ("stages[1].depth", MAX_BLOCKS, "stages:", f"MAX_BLOCKS = {MAX_BLOCKS}"),
    ("stem.act", "tanh", "stem.act", "allowed:"),
    ("stem.dwconv_groups", 3, "stem.dwconv_groups", "does not divide"),
    ("head.kind", "avg", "head.kind", '"gdconv", "gap", "fc", "s2fc"'),
    ("head.conv_width", -5, "head.conv_width", "positive integer"),
    ("embedding", 0, "embedding", "positive integer"),
    ("input_size", [112], "input_size", "[H, W]"),
    ("input_size", [112, 100], "stages[2].stride", "cannot be halved"),
    ("version", 2, "version", "allowed: 1"),
]


@pytest.mark.parametrize("path, value, where, allowed", BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_invalid_field_is_named(path, value, where, allowed):
    with pytest.raises(ArchSpecError) as err:
        ArchSpec.from_dict(_edit(path, value))
    assert isinstance(err.value, HwfaceError)
    assert where in str(err.value) and allowed in str(err.value), str(err.value)


@pytest.mark.parametrize("path", ["stages[1].width", "stem.width", "head.kind", "embedding", "stages"])
def test_missing_field_is_named(path):
    with pytest.raises(ArchSpecError, match=re.escape(f"{path}: missing")):
        ArchSpec.from_dict(_edit(path, None, delete=True))


def test_all_problems_at_once_and_other_rules():
    with pytest.raises(ArchSpecError) as err:
        ArchSpec.from_dict(_edit("stages[0].kernel", 9) | {"embedding": -1})
    assert {p.split(":")[0] for p in err.value.problems} == {"stages[0].kernel", "embedding"}
    d = _edit("stages[0].block", "mfn_bottleneck")
    with pytest.raises(ArchSpecError, match=r"stages\[0\]\.se: mfn_bottleneck has no SE"):
        ArchSpec.from_dict(d)
    every_stride_2 = zoo_spec("seesaw_share").to_dict()
    for s in every_stride_2["stages"]:
        s["stride"] = 2  # 56 -> 28 -> 14 -> 7 -> gone
    with pytest.raises(ArchSpecError, match=r"stages\[3\]\.stride: the 7x7 px feature map"):
        ArchSpec.from_dict(every_stride_2)
    fr = zoo_spec("frmbconv_7x7").to_dict()
    with pytest.raises(ArchSpecError, match=r"head\.kind: s2fc needs a last feature map of at least 3x3"):
        ArchSpec.from_dict(fr | {"input_size": [32, 32]})
    with pytest.raises(ArchSpecError, match=r"head\.projection: a s2fc head ends in FC"):
        ArchSpec.from_dict(fr | {"head": fr["head"] | {"projection": "conv"}})
    with pytest.raises(ArchSpecError, match='embedding: with head.projection "none" the embedding is the 512 channels'):
        ArchSpec.from_dict(_edit("head.projection", "none") | {"embedding": 128})
    with pytest.raises(ArchSpecError, match="not valid JSON"):
        ArchSpec.from_json("{")
    with pytest.raises(ArchSpecError, match=r"stages\[0\]\.kernel"):  # the Python constructor validates too
        spec = zoo_spec("mbconv_3x3")
        ArchSpec(spec.input_size, spec.stem, (StageSpec("mbconv", 32, 1, 1, 4, 1, False, "relu"),), spec.head, 512)


# ---------------------------------------------------------------- sampling


def test_sample_arch_is_reproducible_and_varied():
    specs = [sample_arch(DEFAULT_SPACE, seed) for seed in range(3)]
    assert specs == [sample_arch(DEFAULT_SPACE, seed) for seed in range(3)]
    assert len(set(specs)) == 3


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sampled_spec_builds_and_runs(seed):
    spec = sample_arch(seed=seed)
    assert spec_madds(spec) <= DEFAULT_SPACE.max_madds
    assert spec.input_size == DEFAULT_SPACE.input_size and spec.n_blocks <= MAX_BLOCKS
    with torch.no_grad():
        y = build(spec, seed=seed)(torch.from_numpy(example_input((2, 3, *spec.input_size), seed)))
    assert tuple(y.shape) == (2, spec.embedding)
    assert torch.isfinite(y).all() and float(y.norm()) > 1e-3


def test_sampled_widths_are_multiples_of_8_off_the_zoo_grid():
    rng = random.Random(0)
    widths = []
    for _ in range(30):
        spec = draw_arch(DEFAULT_SPACE, rng)
        widths += [spec.stem.width] + [s.width for s in spec.stages]
        for s, plan in zip(spec.stages, DEFAULT_SPACE.stages):
            assert 0.5 * plan.base_width <= s.width <= 1.5 * plan.base_width
    assert all(w % 8 == 0 for w in widths)
    assert set(widths) - ZOO_WIDTHS, "sampled widths never leave the zoo's grid"


def test_search_space_is_checked():
    with pytest.raises(SearchSpaceError, match="blocks"):
        SearchSpace(blocks=("resnet",))
    with pytest.raises(SearchSpaceError, match="max_madds"):
        sample_arch(SearchSpace(max_madds=1e6, max_tries=2), seed=0)


# ---------------------------------------------------------------- export


def test_spec_exports_like_the_zoo(tmp_path):
    import onnx

    zoo = export_model("mobilefacenet", tmp_path / "zoo.onnx")
    ours = export_spec(zoo_spec("mobilefacenet"), tmp_path / "spec.onnx")
    ops = [[n.op_type for n in onnx.load(r.path).graph.node] for r in (zoo, ours)]
    assert ops[0] == ops[1]
    sampled = export_spec(sample_arch(seed=3), tmp_path / "sampled.onnx", seed=3)
    assert sampled.max_abs_diff < 1e-3 and sampled.output_shape == (1, sample_arch(seed=3).embedding)
    assert np.isfinite(sampled.max_abs_diff)
