"""IResNet family: the insightface / ArcFace "LResNet100E-IR" (R100), the large
reference network of the LFR challenge ("Towards Flops-constrained Face
Recognition", ICCV-W 2019, Sec. 2 and Tables 1 and 3).

Stem Conv3x3(64, stride 1)-BN-PReLU at 112x112; four stages of improved residual
units (BN -> Conv3x3 -> BN -> PReLU -> Conv3x3(stride) -> BN, plus a Conv1x1
(stride)-BN shortcut where the shape changes), layers [3, 13, 30, 3], channels
64/128/256/512, the first unit of every stage with stride 2 (112 -> 7); output
"E" head BN -> Dropout -> FC(512*7*7 -> 512) -> BN1d. This is insightface's
``iresnet100`` (arcface_torch) and the MXNet ``fresnet`` with ``version_unit=3``,
``version_input=1``, ``version_output=E`` that the challenge baseline used.

Paper figures. 003, Table 1: R100 takes 24.22 GFlops, "the total MAdd" of
torchstat, which counts a multiply and an add separately ((2K - 1) per output of
a K-weight dot product). hwface counts one multiply-add per weight use, so the
paper figure is halved: 12.11 G. The challenge paper gives no parameter count;
the FR-MBConv paper (Table 5) lists ArcFace+Res100 at 250 MB, read as MiB of fp32
weights (250 * 2**20 / 4 = 65.5 M), the same unit as its own Tables 7-9.
"""

from __future__ import annotations

import torch
from torch import nn

from hwface.models.blocks import Embedding, build_stages, head_kernel
from hwface.models.registry import register_model

TOTAL_STRIDE = 16
STEM_CHANNELS = 64
BN_EPS = 1e-5

# Rows: (block, t, c, n, s); t (expansion) is unused by the basic unit.
IRESNET100 = (
    ("ibasic", 1, 64, 3, 2),
    ("ibasic", 1, 128, 13, 2),
    ("ibasic", 1, 256, 30, 2),
    ("ibasic", 1, 512, 3, 2),
)


class IBasicBlock(nn.Module):
    """Improved residual unit (ArcFace Fig. 7 (c)): BN -> Conv3x3 -> BN -> PReLU ->
    Conv3x3(stride) -> BN, added to the identity or to a Conv1x1(stride)-BN
    projection when the stride or channel count changes."""

    def __init__(self, in_ch: int, out_ch: int, expansion: float = 1, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_ch, eps=BN_EPS),
            nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_ch, eps=BN_EPS),
            nn.PReLU(out_ch),
            nn.Conv2d(out_ch, out_ch, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_ch, eps=BN_EPS),
        )
        self.shortcut: nn.Module
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                nn.BatchNorm2d(out_ch, eps=BN_EPS),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class OutputE(nn.Sequential):
    """ArcFace's output "E": BN -> Dropout -> FC -> BN1d on the flattened last
    feature map (512 x 7 x 7 at 112x112)."""

    def __init__(self, ch: int, feat: tuple[int, int], dim: int = 512, dropout: float = 0.0) -> None:
        super().__init__(
            nn.BatchNorm2d(ch, eps=BN_EPS),
            nn.Dropout(dropout),
            nn.Flatten(1),
            nn.Linear(ch * feat[0] * feat[1], dim),
            nn.BatchNorm1d(dim, eps=BN_EPS),
        )


def build_iresnet(
    table=IRESNET100,
    input_size: tuple[int, int] = (112, 112),
    embedding_dim: int = 512,
    dropout: float = 0.0,
) -> Embedding:
    """Stem + the stages of ``table`` + output E.

    Parameters
    ----------
    table : sequence of (block, t, c, n, s)
    input_size : (int, int)
        Input (H, W) in pixels, multiples of 16; the FC takes 512 * H/16 * W/16.
    embedding_dim : int
    dropout : float
        Dropout before the FC (identity in eval mode; insightface trains with 0-0.4).
    """
    stem = nn.Sequential(
        nn.Conv2d(3, STEM_CHANNELS, 3, 1, 1, bias=False),
        nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS),
        nn.PReLU(STEM_CHANNELS),
    )
    stages, ch = build_stages(table, STEM_CHANNELS, {"ibasic": IBasicBlock})
    feat = head_kernel(input_size, TOTAL_STRIDE)
    return Embedding(nn.Sequential(stem, *stages), OutputE(ch, feat, embedding_dim, dropout))


_R100_MADDS = 24.22e9 / 2  # 003 Table 1, torchstat MAdd counts multiply and add
_R100_PARAMS = 250 * 2**20 / 4  # FR-MBConv Table 5, ArcFace+Res100 250 MB (MiB, fp32)


@register_model(
    "iresnet100",
    paper="Towards Flops-constrained Face Recognition (ICCV-W 2019), R100, Table 1",
    input_size=(112, 112),
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=_R100_PARAMS,
    paper_madds=_R100_MADDS,
    notes="""
insightface IResNet-100 (ArcFace LResNet100E-IR): BN-Conv3x3-BN-PReLU-Conv3x3(stride)-BN
units with Conv1x1-BN projection shortcuts, layers [3, 13, 30, 3], channels 64/128/256/512,
output BN-Dropout-FC-BN, 512-d. MAdds: the paper's 24.22 GFlops is torchstat's "MAdd",
which counts multiply and add separately, so the registry figure is 24.22 G / 2 = 12.11 G
(hwface counts one multiply-add per weight use). Params: the challenge paper gives none;
paper_params is the FR-MBConv paper's 250 MB for ArcFace+Res100 read as MiB of fp32
weights (65.5 M), the unit that fits that paper's own Tables 7-9.
Params -0.6%, MAdds -0.2%.
""",
)
def iresnet100(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """IResNet-100 (R100), 112x112 -> 512-d."""
    return build_iresnet(IRESNET100, input_size=input_size, **kw)
