"""The face-adapted baselines of MobileFaceNets (CCBR 2018), Table 2.

MobileNetV1, ShuffleNet (1x, g=3) and MobileNetV2 as their papers define them for
ImageNet, adapted to 112x112 faces as MobileFaceNets Sec. 3.1/4.1 says: the first
convolution uses stride 1 instead of 2, so that the feature maps have the sizes
the ImageNet networks have at 224x224 and the last one is 7x7 (total stride 16).
The classifier is dropped; the face feature is the output of the global operator:

- MobileNetV1, ShuffleNet, MobileNetV2: global average pooling (GAPool), so the
  embedding has the width of the last feature map (1024, 960, 1280). Sec. 3.1:
  "It is a natural choice to use the output of the global average pooling layer as
  a face feature vector"; a fully connected embedding after it is explicitly not
  considered, and the parameter counts of Table 2 leave no room for one.
- MobileNetV2-GDConv: GAPool replaced by a linear GDConv7x7 over 1280 channels,
  which "outputs a 1280-dimensional face feature vector" (Sec. 3.2).

Tables are ``(operator, t, c, n, s, *extra)`` rows as in the original papers; the
rows from the global operator on form the head.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hwface.models.blocks import (
    ChannelShuffle,
    ConvBNAct,
    Embedding,
    GDConv,
    InvertedResidual,
    build_stages,
    depthwise,
    head_kernel,
    pointwise,
)
from hwface.models.registry import register_model

TOTAL_STRIDE = 16
HEAD_OPS = ("gapool", "linear_gdconv")
_PAPER = "MobileFaceNets (CCBR 2018), Table 2 / Sec. 3.1, 4.1"

# MobileNetV1 (Howard et al. 2017, Table 1); one row per depthwise-separable layer
# (3x3 depthwise + BN + ReLU, 1x1 pointwise + BN + ReLU).
MOBILENETV1_FACE = (
    # operator    t     c     n  s
    ("conv3x3",   None, 32,   1, 1),  # s2 in the ImageNet net; s1 for 112x112 faces
    ("dwsep",     None, 64,   1, 1),  # 112^2
    ("dwsep",     None, 128,  1, 2),  # -> 56^2
    ("dwsep",     None, 128,  1, 1),
    ("dwsep",     None, 256,  1, 2),  # -> 28^2
    ("dwsep",     None, 256,  1, 1),
    ("dwsep",     None, 512,  1, 2),  # -> 14^2
    ("dwsep",     None, 512,  5, 1),
    ("dwsep",     None, 1024, 1, 2),  # -> 7^2
    ("dwsep",     None, 1024, 1, 1),  # printed "s2" in the MobileNet table, s1 in every implementation
    ("gapool",    None, 1024, 1, 1),  # 1024-d face feature
)

# ShuffleNet 1x, g=3 (Zhang et al. 2018, Table 1). t is the bottleneck ratio
# (bottleneck width = 1/4 of the residual branch's output: c, or c - c_in in the
# stride-2 concat units); extra column: groups.
# "shuffle_g1" is the first unit of Stage 2, whose first 1x1 conv is not grouped
# ("the number of input channels is relatively small").
SHUFFLENET_G3_FACE = (
    # operator      t     c    n  s  groups
    ("conv3x3",     None, 24,  1, 1),     # s2 in the ImageNet net; s1 for faces
    ("maxpool3x3",  None, 24,  1, 2),     # 112^2 -> 56^2
    ("shuffle_g1",  0.25, 240, 1, 2, 3),  # Stage 2 -> 28^2
    ("shuffle",     0.25, 240, 3, 1, 3),
    ("shuffle",     0.25, 480, 8, 2, 3),  # Stage 3 -> 14^2
    ("shuffle",     0.25, 960, 4, 2, 3),  # Stage 4 -> 7^2
    ("gapool",      None, 960, 1, 1),     # 960-d face feature
)

# MobileNetV2 (Sandler et al. 2018, Table 2).
MOBILENETV2_FACE = (
    # operator     t     c     n  s
    ("conv3x3",    None, 32,   1, 1),  # s2 in the ImageNet net; s1 for faces
    ("bottleneck", 1,    16,   1, 1),  # 112^2
    ("bottleneck", 6,    24,   2, 2),  # -> 56^2
    ("bottleneck", 6,    32,   3, 2),  # -> 28^2
    ("bottleneck", 6,    64,   4, 2),  # -> 14^2
    ("bottleneck", 6,    96,   3, 1),
    ("bottleneck", 6,    160,  3, 2),  # -> 7^2
    ("bottleneck", 6,    320,  1, 1),
    ("conv1x1",    None, 1280, 1, 1),
    ("gapool",     None, 1280, 1, 1),  # 1280-d face feature
)

# MobileNetV2-GDConv (MobileFaceNets Sec. 3.2): GAPool replaced by GDConv7x7x1280.
MOBILENETV2_GDCONV_FACE = MOBILENETV2_FACE[:-1] + (("linear_gdconv", None, 1280, 1, 1),)


class ShuffleUnit(nn.Module):
    """ShuffleNet unit (Zhang et al. 2018, Fig. 2b/c).

    1x1 group conv + BN + ReLU, channel shuffle, 3x3 depthwise (stride) + BN,
    1x1 group conv + BN; stride 1: add the input, stride 2: concatenate a 3x3
    average-pooled input (the branch then outputs ``out_ch - in_ch`` channels);
    ReLU after the merge.

    Parameters
    ----------
    in_ch, out_ch : int
    ratio : float
        Bottleneck width as a fraction of the branch output (``out_ch``, or
        ``out_ch - in_ch`` at stride 2); 1/4 in the paper.
    stride : int
    groups : int
    first_groups : int, optional
        Groups of the first 1x1 conv (default ``groups``; 1 for the first unit of Stage 2).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        ratio: float,
        stride: int,
        groups: int,
        first_groups: int | None = None,
    ) -> None:
        super().__init__()
        self.concat = stride != 1
        branch_out = out_ch - in_ch if self.concat else out_ch
        mid = int(branch_out * ratio)
        if not self.concat and in_ch != out_ch:
            raise ValueError(f"stride-1 ShuffleNet unit needs in_ch == out_ch, got {in_ch} -> {out_ch}")
        g1 = groups if first_groups is None else first_groups
        self.reduce = pointwise(in_ch, mid, groups=g1, act="relu")
        self.shuffle = ChannelShuffle(groups)
        self.dw = depthwise(mid, 3, stride, act="none")
        self.expand = pointwise(mid, branch_out, groups=groups, act="none")
        self.shortcut = nn.AvgPool2d(3, stride, 1) if self.concat else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(self.dw(self.shuffle(self.reduce(x))))
        y = torch.cat((self.shortcut(x), y), 1) if self.concat else x + y
        return self.act(y)


class DepthwiseSeparable(nn.Sequential):
    """MobileNetV1 layer: 3x3 depthwise + BN + act, 1x1 pointwise + BN + act."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, act: str = "relu") -> None:
        super().__init__(depthwise(in_ch, 3, stride, act=act), pointwise(in_ch, out_ch, act=act))


def _blocks(kernel: tuple[int, int], act: str = "relu") -> dict:
    def gapool(i: int, c: int, t, s: int) -> nn.Module:
        return nn.AdaptiveAvgPool2d(1)

    def gdconv(i: int, c: int, t, s: int) -> nn.Module:
        return GDConv(i, kernel)

    return {
        "conv3x3": lambda i, c, t, s: ConvBNAct(i, c, 3, s, act=act),
        "conv1x1": lambda i, c, t, s: pointwise(i, c, act=act),
        "maxpool3x3": lambda i, c, t, s: nn.MaxPool2d(3, s, 1),
        "dwsep": lambda i, c, t, s: DepthwiseSeparable(i, c, s, act=act),
        "bottleneck": lambda i, c, t, s: InvertedResidual(i, c, t, s, 3, act=act),
        "shuffle": lambda i, c, t, s, g: ShuffleUnit(i, c, t, s, g),
        "shuffle_g1": lambda i, c, t, s, g: ShuffleUnit(i, c, t, s, g, first_groups=1),
        "gapool": gapool,
        "linear_gdconv": gdconv,
    }


def build_baseline(table: Sequence[tuple], input_size: tuple[int, int] = (112, 112), act: str = "relu") -> Embedding:
    """Build a face-adapted baseline from its table.

    Parameters
    ----------
    table : sequence of (operator, t, c, n, s, *extra)
    input_size : (int, int)
        Input (H, W), multiples of 16; sets the GDConv kernel where there is one.
    act : str
        Activation of the body (ReLU; the baselines' papers use ReLU, MobileNetV2 ReLU6).
    """
    split = next((i for i, row in enumerate(table) if row[0] in HEAD_OPS), len(table))
    blocks = _blocks(head_kernel(input_size, TOTAL_STRIDE), act)
    backbone, ch = build_stages(table[:split], 3, blocks)
    head, _ = build_stages(table[split:], ch, blocks)
    return Embedding(backbone, head)


@register_model(
    "mobilenetv1_face",
    paper=_PAPER,
    input_size=(112, 112),
    embedding_dim=1024,
    total_stride=TOTAL_STRIDE,
    paper_params=3.2e6,
    notes="""
MobileNetV1 1.0x (ReLU, BN) with a stride-1 first conv, classifier removed; the 1024-d
GAPool output is the face feature. 3.207M params (+0.2% vs 3.2M; conv weights alone
3.185M, -0.5%). MAdds 567.7M (none in the paper).
""",
)
def mobilenetv1_face(input_size=(112, 112), **kw) -> nn.Module:
    """MobileNetV1 baseline: stride-1 stem, GAPool, 1024-d feature."""
    return build_baseline(MOBILENETV1_FACE, input_size)


@register_model(
    "shufflenet_g3_face",
    paper=_PAPER,
    input_size=(112, 112),
    embedding_dim=960,
    total_stride=TOTAL_STRIDE,
    paper_params=0.83e6,
    notes="""
ShuffleNet 1x, g=3 (ReLU, BN; no ReLU after the depthwise conv) with a stride-1 first
conv (the 3x3 max pool is kept, so the last map is 7x7), classifier removed; the 960-d
GAPool output is the face feature. Reading: the bottleneck width is 1/4 of the
*residual branch's* output, i.e. of c - c_in in the stride-2 (concat) units (as e.g.
the jaxony/ShuffleNet implementation does); megvii's reference uses 1/4 of the unit's
full output there, which gives 0.905M params (+9.0%). The chosen reading gives 0.854M
params (+2.9% vs 0.83M) and its convolution weights alone are exactly 0.830M, so it
is very likely the paper's network. MAdds 126.1M (none in the paper).
""",
)
def shufflenet_g3_face(input_size=(112, 112), **kw) -> nn.Module:
    """ShuffleNet (1x, g=3) baseline: stride-1 stem, GAPool, 960-d feature."""
    return build_baseline(SHUFFLENET_G3_FACE, input_size)


@register_model(
    "mobilenetv2_face",
    paper=_PAPER,
    input_size=(112, 112),
    embedding_dim=1280,
    total_stride=TOTAL_STRIDE,
    paper_params=2.1e6,
    tolerance=0.07,
    notes="""
MobileNetV2 1.0x with a stride-1 first conv, classifier removed; the 1280-d GAPool
output is the face feature (Sec. 3.1). ReLU6 as in MobileNetV2. 2.224M params (+5.9% vs 2.1M; equal to
torchvision's mobilenet_v2 without its classifier; conv weights alone 2.190M, +4.3%).
No layer of the standard network can be left out to reach 2.1M, and the paper gives
2.1M also for the GDConv version, which has 62.7k more, so its figure is truncated
rather than rounded; tolerance 0.07 for this. MAdds 299.5M (none in the paper).
""",
)
def mobilenetv2_face(input_size=(112, 112), **kw) -> nn.Module:
    """MobileNetV2 baseline: stride-1 stem, GAPool, 1280-d feature."""
    return build_baseline(MOBILENETV2_FACE, input_size, act="relu6")


@register_model(
    "mobilenetv2_gdconv_face",
    paper=_PAPER,
    input_size=(112, 112),
    embedding_dim=1280,
    total_stride=TOTAL_STRIDE,
    paper_params=2.1e6,
    tolerance=0.10,
    notes="""
MobileNetV2-GDConv: as mobilenetv2_face with GAPool replaced by a linear GDConv7x7 over
the 1280 channels (+62,720 weights, +62,720 MAdds, Sec. 3.2), 1280-d feature.
2.289M params (+9.0% vs 2.1M; conv weights alone 2.253M, +7.3%). The paper prints 2.1M
for both MobileNetV2 and MobileNetV2-GDConv although GDConv7x7x1280 adds 62,720
parameters by the paper's own Sec. 3.2, so the figure is truncated; the deviation is
that of mobilenetv2_face (+5.9%) plus the GDConv; tolerance 0.10 for this. MAdds
299.6M (none in the paper).
""",
)
def mobilenetv2_gdconv_face(input_size=(112, 112), **kw) -> nn.Module:
    """MobileNetV2-GDConv baseline: stride-1 stem, GDConv7x7, 1280-d feature."""
    return build_baseline(MOBILENETV2_GDCONV_FACE, input_size, act="relu6")
