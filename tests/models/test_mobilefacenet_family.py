"""Structural tests of the MobileFaceNet family and the MobileFaceNets Table 2 baselines."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hwface.analysis import count_params, layer_table
from hwface.models import create_model, get_model_info
from hwface.models.blocks import GDConv
from hwface.models.mobilefacenet import MMOBILEFACENET, MOBILEFACENET, Bottleneck

FAMILY = [
    "mobilefacenet",
    "mobilefacenet_112x96",
    "mobilefacenet_96x96",
    "mobilefacenet_m",
    "mobilefacenet_s",
    "mobilefacenet_relu",
    "mobilefacenet_exp2",
    "mobilefacenet_efar",
    "mmobilefacenet",
    "mmobilefacenet_112x112",
    "mobilenetv2_gdconv_face",
]


def _gdconv(model: nn.Module) -> GDConv:
    (gd,) = [m for m in model.modules() if isinstance(m, GDConv)]
    return gd


@pytest.mark.parametrize("name", FAMILY)
def test_gdconv_kernel_is_last_feature_map(name):
    info = get_model_info(name)
    model = create_model(name)
    with torch.no_grad():
        fmap = model.backbone(torch.zeros(1, 3, *info.input_size))
    conv = _gdconv(model)[0]
    assert conv.kernel_size == tuple(fmap.shape[2:])
    assert conv.groups == conv.in_channels == fmap.shape[1]
    assert conv.padding == (0, 0) and conv.stride == (1, 1)


@pytest.mark.parametrize("size", [(112, 96), (96, 96), (128, 128)])
def test_gdconv_follows_input_size(size):
    model = create_model("mobilefacenet", input_size=size)
    assert _gdconv(model)[0].kernel_size == (size[0] // 16, size[1] // 16)
    assert model(torch.zeros(1, 3, *size)).shape == (1, 128)


def test_gdconv_is_linear():
    gd = _gdconv(create_model("mobilefacenet"))
    assert [type(m) for m in gd] == [nn.Conv2d, nn.BatchNorm2d]


def test_primary_layer_shapes_follow_table1():
    rows = [r for r in layer_table(create_model("mobilefacenet"), (112, 112)) if r.op in ("conv", "dwconv")]
    assert rows[0].output_shape == (1, 64, 56, 56) and rows[0].stride == (2, 2)
    assert rows[1].op == "dwconv" and rows[1].output_shape == (1, 64, 56, 56)
    assert rows[-1].op == "dwconv" and rows[-1].kernel == (7, 7)  # the GDConv
    assert sum(n for op, _, _, n, _ in MOBILEFACENET if op == "bottleneck") == 15


def test_m_and_s_variants_remove_the_paper_layers():
    full = create_model("mobilefacenet")
    m = create_model("mobilefacenet_m")
    s = create_model("mobilefacenet_s")
    pw_after = 512 * 128 + 2 * 128  # linear 1x1 conv + BN after GDConv
    assert count_params(full) - count_params(m) == pw_after
    pw_before = 128 * 512 + 3 * 512  # conv1x1 + BN + PReLU before GDConv
    gd_shrink = (512 - 128) * (49 + 2)  # GDConv + BN on 128 instead of 512 channels
    assert count_params(m) - count_params(s) == pw_before + gd_shrink
    assert m(torch.zeros(1, 3, 112, 112)).shape == (1, 512)
    assert s(torch.zeros(1, 3, 112, 112)).shape == (1, 128)


def test_relu_variant_only_changes_the_activation():
    prelu = create_model("mobilefacenet")
    relu = create_model("mobilefacenet_relu")
    assert not any(isinstance(m, nn.PReLU) for m in relu.modules())
    n_prelu = sum(m.weight.numel() for m in prelu.modules() if isinstance(m, nn.PReLU))
    assert count_params(prelu) - count_params(relu) == n_prelu


def test_exp2_doubles_the_first_stage_hidden_width_only():
    def hidden(model):
        return [r.output_shape[1] for r in layer_table(model, (112, 112)) if r.op == "dwconv"][1:-1]

    base, exp2 = hidden(create_model("mobilefacenet")), hidden(create_model("mobilefacenet_exp2"))
    assert exp2[:5] == [2 * h for h in base[:5]]  # the five 64-channel bottlenecks
    assert exp2[5:] == base[5:]


def test_mmobilefacenet_doubles_channels_and_keeps_hidden_widths():
    def hidden(model):
        return [b.body[1][0].out_channels for b in model.modules() if isinstance(b, Bottleneck)]

    def outputs(model):
        return [b.body[-1][0].out_channels for b in model.modules() if isinstance(b, Bottleneck)]

    one, two = create_model("mobilefacenet"), create_model("mmobilefacenet")
    assert len(hidden(one)) == len(hidden(two)) == 15
    assert hidden(one) == hidden(two)  # Table 1's hidden widths kept (the reading that gives 2.1M)
    assert outputs(two) == [2 * c for c in outputs(one)]
    stem = [r for r in layer_table(create_model("mmobilefacenet"), (112, 96)) if r.op == "conv"][0]
    assert stem.output_shape[1] == 2 * MOBILEFACENET[0][2] == MMOBILEFACENET[0][2]


@pytest.mark.parametrize(
    "name,dim",
    [("mobilenetv1_face", 1024), ("shufflenet_g3_face", 960), ("mobilenetv2_face", 1280), ("mobilenetv2_gdconv_face", 1280)],
)
def test_baselines_have_a_stride1_stem_and_a_7x7_last_map(name, dim):
    model = create_model(name)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.stride == (1, 1)
    with torch.no_grad():
        fmap = model.backbone(torch.zeros(1, 3, 112, 112))
        assert fmap.shape[2:] == (7, 7)
        assert model(torch.zeros(1, 3, 112, 112)).shape == (1, dim)


def test_mobilenetv2_gdconv_adds_only_the_gdconv():
    gap = create_model("mobilenetv2_face")
    gd = create_model("mobilenetv2_gdconv_face")
    assert count_params(gd) - count_params(gap) == 1280 * 49 + 2 * 1280
