"""Structural tests for the FR-MBConv family and IResNet-100 (papers 000 and 003).

The parametrized zoo tests check params/MAdds against the papers; these check the
structure the papers describe: receptive fields, layer order, SE placement and the
DWF/PWF formulas of Tables 1-2.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hwface.models.frmbconv import (
    FRMBCONV_7x7,
    FRMBConv,
    MBConv,
    build_frmbconv,
)
from hwface.models.blocks import SqueezeExcite


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    """Convolutions of a block's main path, SE excluded."""
    se = {id(c) for m in module.modules() if isinstance(m, SqueezeExcite) for c in m.modules()}
    return [m for m in module.modules() if isinstance(m, nn.Conv2d) and id(m) not in se]


def _is_dw(conv: nn.Conv2d) -> bool:
    return conv.groups == conv.in_channels == conv.out_channels and conv.groups > 1


def _receptive_field(block: nn.Module, ch: int, size: int = 21) -> int:
    """Width of the input region that reaches the centre output pixel (autograd)."""
    block.eval()
    x = torch.randn(1, ch, size, size, requires_grad=True)
    y = block(x)
    c = y.shape[-1] // 2
    y[..., c, c].sum().backward()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    return int(cols.max() - cols.min() + 1)


def _block_madds(block: nn.Module, ch: int, hw: int) -> dict[str, int]:
    totals = {"dw": 0, "pw": 0}
    se = {id(c) for m in block.modules() if isinstance(m, SqueezeExcite) for c in m.modules()}

    def hook(m, inp, out):
        if id(m) in se:
            return
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        totals["dw" if _is_dw(m) else "pw"] += out[0].numel() * k

    hs = [m.register_forward_hook(hook) for m in block.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        block.eval()(torch.zeros(1, ch, hw, hw))
    for h in hs:
        h.remove()
    return totals


@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
def test_frmbconv_receptive_field_equals_replaced_kernel(kernel, stride):
    """FR-MBConv kxk has the receptive field of the kxk depthwise it factorizes."""
    fr = FRMBConv(8, 8, 2, stride=stride, kernel=kernel, se="none")
    mb = MBConv(8, 8, 2, stride=stride, kernel=kernel, se="none")
    assert _receptive_field(fr, 8) == _receptive_field(mb, 8) == kernel
    dws = [c for c in _convs(fr) if _is_dw(c)]
    assert all(c.kernel_size == (3, 3) for c in dws)
    assert len(dws) == (kernel - 1) // 2


def test_frmbconv_7x7_layer_order():
    """Fig. 2 (d): DW3x3 (compact, linear) -> PW expand -> DW3x3 -> DW3x3 (stride) -> PW project."""
    block = FRMBConv(16, 24, 4, stride=2, kernel=7, se="none")
    convs = _convs(block)
    assert [(_is_dw(c), c.in_channels, c.out_channels) for c in convs] == [
        (True, 16, 16),
        (False, 16, 64),
        (True, 64, 64),
        (True, 64, 64),
        (False, 64, 24),
    ]
    assert [c.stride for c in convs] == [(1, 1)] * 3 + [(2, 2), (1, 1)]
    # "linear activation after the first depthwise and the last pointwise convolution"
    acts = [type(seq[2]) for seq in block.body]
    assert acts == [nn.Identity, nn.PReLU, nn.PReLU, nn.PReLU, nn.Identity]


def test_expansion_skipped_when_e_is_1():
    convs = _convs(FRMBConv(32, 32, 1, kernel=7, se="none"))
    assert [_is_dw(c) for c in convs] == [True, True, True, False]


def test_frmbconv_3x3_is_mbconv_3x3_except_se_location():
    """Sec. 4.4: "FR-MBConv 3x3 is the same block as MBConv 3x3 except the location of SE"."""
    fr = FRMBConv(16, 24, 6, stride=2, kernel=3, se="post")
    mb = MBConv(16, 24, 6, stride=2, kernel=3, se="pre")
    shape = lambda b: [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.groups) for c in _convs(b)]
    assert shape(fr) == shape(mb)
    se_fr = [m for m in fr.modules() if isinstance(m, SqueezeExcite)]
    se_mb = [m for m in mb.modules() if isinstance(m, SqueezeExcite)]
    assert se_fr[0].reduce.in_channels == 24  # after projection, compact space
    assert se_mb[0].reduce.in_channels == 96  # before projection, expanded space
    assert isinstance(fr.body[-1], SqueezeExcite) and isinstance(mb.body[-2], SqueezeExcite)


@pytest.mark.parametrize("e", [1, 3, 6])
def test_dwf_pwf_formulas(e):
    """Table 2: PWF = 2e HWC^2 for all; DWF = 49e HWC (MBConv 7x7), (18e+9) HWC (FR-MBConv)."""
    c, hw = 8, 10
    mb = _block_madds(MBConv(c, c, e, kernel=7, se="none"), c, hw)
    fr = _block_madds(FRMBConv(c, c, e, kernel=7, se="none"), c, hw)
    pwf = (2 * e if e != 1 else 1) * hw * hw * c * c  # e = 1 skips the expansion layer
    assert mb["pw"] == fr["pw"] == pwf
    assert mb["dw"] == 49 * e * hw * hw * c
    assert fr["dw"] == (18 * e + 9) * hw * hw * c


def test_table3_shapes():
    """Table 3 stage outputs and the S2FC head (DW3x3 stride 2 padding 0 -> 3x3x200 -> 512)."""
    model = build_frmbconv(FRMBCONV_7x7).eval()
    x = torch.zeros(1, 3, 112, 112)
    with torch.no_grad():
        x = model.backbone[0](x)
        assert tuple(x.shape[1:]) == (32, 56, 56)
        outs = {}
        i = 1
        for row in FRMBCONV_7x7:
            for _ in range(row[3]):
                x = model.backbone[i](x)
                i += 1
            outs[row[2]] = tuple(x.shape[1:])
        assert outs == {32: (32, 56, 56), 48: (48, 28, 28), 104: (104, 14, 14), 144: (144, 14, 14), 200: (200, 7, 7)}
        assert tuple(model.head[0](x).shape[1:]) == (200, 3, 3)
        assert model.head[3].in_features == 1800 and model.head[3].out_features == 512


def test_fr7x7_vs_mb7x7_claims():
    """Sec. 4.4: FR-MBConv 7x7 cuts FLOPs by ~11% and model size by ~50% vs MBConv 7x7."""
    from hwface.analysis import summarize

    fr, mb = summarize("frmbconv_7x7"), summarize("mbconv_7x7")
    assert 0.08 < 1 - fr.madds / mb.madds < 0.14
    assert 0.45 < 1 - fr.params / mb.params < 0.55


def test_iresnet100_structure():
    """R100: [3, 13, 30, 3] units, 64/128/256/512; 100 weight layers (stem + 2 per unit + FC)."""
    from hwface.models.iresnet import IBasicBlock
    from hwface.models.registry import create_model

    model = create_model("iresnet100")
    units = [m for m in model.modules() if isinstance(m, IBasicBlock)]
    widths = [u.body[1].out_channels for u in units]
    assert [widths.count(c) for c in (64, 128, 256, 512)] == [3, 13, 30, 3]
    main_convs = sum(1 for u in units for m in u.body if isinstance(m, nn.Conv2d))
    fcs = sum(1 for m in model.modules() if isinstance(m, nn.Linear))
    assert 1 + main_convs + fcs == 100
    assert sum(isinstance(u.shortcut, nn.Sequential) for u in units) == 4
    assert model.head[3].in_features == 512 * 7 * 7
