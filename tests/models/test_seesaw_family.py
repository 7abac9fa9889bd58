"""Structural tests of the SeesawFaceNets family (hwface.models.seesaw)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hwface.analysis import count_params, layer_table
from hwface.models import create_model
from hwface.models.blocks import ChannelShuffle
from hwface.models.seesaw import (
    ChannelShare,
    PoolConvSkip,
    SeesawBlock,
    UnevenGroupPointwise,
)


def _blocks(model: nn.Module) -> list[SeesawBlock]:
    return [m for m in model.modules() if isinstance(m, SeesawBlock)]


def _conv_shapes(block: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.weight.shape) for m in block.modules() if isinstance(m, nn.Conv2d)]


def test_uneven_group_pointwise_is_block_diagonal():
    torch.manual_seed(0)
    conv = UnevenGroupPointwise((4, 12), (8, 24), act="none").eval()
    x = torch.randn(1, 16, 5, 5)
    y = conv(x)
    assert y.shape == (1, 32, 5, 5)
    # perturbing the small input group changes only the small output group
    x2 = x.clone()
    x2[:, :4] += 1.0
    d = (conv(x2) - y).abs().amax(dim=(0, 2, 3))
    assert d[:8].min() > 0 and d[8:].max() == 0
    # weights = those of a grouped conv with groups (4->8) and (12->24)
    assert sum(p.numel() for n, p in conv.named_parameters() if n.endswith("0.weight")) == 4 * 8 + 12 * 24


@pytest.mark.parametrize("stride,in_ch,out_ch", [(1, 64, 64), (2, 64, 128)])
def test_shuffle_and_share_blocks_have_same_shapes_and_params(stride, in_ch, out_ch):
    shuffle = SeesawBlock(in_ch, out_ch, 2, stride, mixing="shuffle").eval()
    share = SeesawBlock(in_ch, out_ch, 2, stride, mixing="share").eval()
    x = torch.randn(2, in_ch, 8, 8)
    assert shuffle(x).shape == share(x).shape == (2, out_ch, 8 // stride, 8 // stride)
    assert count_params(shuffle) == count_params(share)
    assert sorted(_conv_shapes(shuffle)) == sorted(_conv_shapes(share))
    assert isinstance(shuffle.mix, ChannelShuffle) and isinstance(share.mix, ChannelShare)


def _mixing_reach(block: SeesawBlock) -> torch.Tensor:
    """Which output channels depend on the small input group (first quarter)."""
    torch.manual_seed(0)
    block = block.eval()
    x = torch.randn(1, block.expand.in_splits[0] + block.expand.in_splits[1], 6, 6)
    x2 = x.clone()
    x2[:, : block.expand.in_splits[0]] += 1.0
    with torch.no_grad():
        return (block(x2) - block(x)).abs().amax(dim=(0, 2, 3)) > 0


def test_both_mixings_connect_the_uneven_groups():
    # shuffle and share each spread the small group's information to all output channels
    for mixing in ("shuffle", "share"):
        reach = _mixing_reach(SeesawBlock(64, 64, 2, 2, mixing=mixing))
        assert reach.all(), mixing
    # but through different channel mixings: shuffle interleaves the expanded
    # channels, share regroups them in place (identity on the tensor)
    x = torch.arange(8.0).reshape(1, 8, 1, 1)
    assert not torch.equal(ChannelShuffle(2)(x), x)
    assert torch.equal(ChannelShare((2, 6))(x), x)


def test_share_projection_groups_straddle_expansion_groups():
    b = SeesawBlock(64, 64, 2, 1, mixing="share")
    assert b.expand.out_splits == [32, 96]
    assert b.project.in_splits == [96, 32]
    assert b.project.out_splits == [48, 16]
    s = SeesawBlock(64, 64, 2, 1, mixing="shuffle")
    assert s.project.in_splits == [32, 96] and s.project.out_splits == [16, 48]


def test_table1_block_layout():
    model = create_model("seesaw_share")
    blocks = _blocks(model)
    assert len(blocks) == 1 + 4 + 1 + 6 + 1 + 2
    assert [b.use_residual for b in blocks] == [False] + [True] * 4 + [False] + [True] * 6 + [False] + [True] * 2
    hidden = [b.dw[0].out_channels for b in blocks]
    assert hidden == [128] * 5 + [256] * 7 + [512] + [256] * 2
    assert all(isinstance(b.se, nn.Module) and not isinstance(b.se, nn.Identity) for b in blocks)
    assert all(isinstance(b.mix, ChannelShare) for b in blocks)
    assert all(isinstance(b.mix, ChannelShuffle) for b in _blocks(create_model("seesaw_shuffle")))


def test_shuffle_and_share_nets_have_same_figures_and_output():
    a, b = create_model("seesaw_shuffle"), create_model("seesaw_share")
    assert count_params(a) == count_params(b)
    ma = sum(r.madds for r in layer_table(a, (112, 112)))
    mb = sum(r.madds for r in layer_table(b, (112, 112)))
    assert ma == mb
    ops_a = {r.op for r in layer_table(a, (112, 112))}
    ops_b = {r.op for r in layer_table(b, (112, 112))}
    assert "channelshuffle" in ops_a and "channelshare" not in ops_a
    assert "channelshare" in ops_b and "channelshuffle" not in ops_b


def test_v2_skip_branch_only_on_stride2_blocks():
    v1, v2 = create_model("dw_seesaw_v1"), create_model("dw_seesaw_v2")
    assert not any(isinstance(m, PoolConvSkip) for m in v1.modules())
    blocks = _blocks(v2)
    with_skip = [b.skip is not None for b in blocks]
    stride2 = [b.dw[0].stride == (2, 2) for b in blocks]
    assert with_skip == stride2 and sum(with_skip) == 3
    assert all(not b.use_residual for b in blocks if b.skip is not None)
    # the branch is the only difference: 1x1 convs 96->96, 96->192, 192->192 (+BN)
    extra = count_params(v2) - count_params(v1)
    assert extra == sum(i * o + 2 * o for i, o in [(96, 96), (96, 192), (192, 192)])


def test_mobi_variant_last_stage_width():
    blocks = _blocks(create_model("seesaw_shuffle_mobi"))
    assert len(blocks) == 1 + 2 + 1 + 3 + 1 + 6
    assert blocks[-1].project.out_splits == [64, 192]  # 256 channels


@pytest.mark.parametrize("name", ["seesaw_share", "dw_seesaw_v2"])
def test_non_default_input_size(name):
    model = create_model(name, input_size=(112, 96))
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 112, 96)).shape == (1, 512)
