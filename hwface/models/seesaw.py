"""SeesawFaceNets family: "SeesawFaceNets: sparse and robust face verification
model for mobile platform" (J. Zhang, 2019).

The networks are MobileFaceNet-shaped (3x3 stem /2, 3x3 depthwise, stages of
bottlenecks, 1x1 conv 512, linear GDConv 7x7, linear 1x1 conv to a 512-D
embedding) with the MobileNetV2 bottleneck replaced by a Seesaw block, swish
as the non-linearity and squeeze-and-excitation in every block.

Seesaw block (Sec. 3.1, Fig. 1; Seesaw-Net, arXiv:1905.03672). The two pointwise
convolutions of the bottleneck are *uneven group* convolutions: the channels are
split 1/4 : 3/4 and each part has its own 1x1 convolution (a grouped 1x1 conv
with two groups of unequal width; PyTorch's ``groups`` only takes equal groups,
so each group is a real ``Conv2d`` and the outputs are concatenated).

    x -> uneven 1x1 expand (BN, swish)  [C/4 -> E/4 | 3C/4 -> 3E/4]
      -> mixing                           (shuffle block: ChannelShuffle(2))
      -> 3x3 depthwise, stride s (BN, swish)
      -> SE on the E expanded channels (reduction 4, ReLU, sigmoid gate, no bias)
      -> uneven 1x1 project, linear (BN)  shuffle: [E/4 -> C'/4 | 3E/4 -> 3C'/4]
                                          share:   [3E/4 -> 3C'/4 | E/4 -> C'/4]
      (+ x when stride 1 and C == C': "RBlock"; without: "Block")

Information must flow between the uneven groups, otherwise the 1/4 and 3/4
channel sets would be two separate networks:

* **Seesaw-shuffle**: a ShuffleNet channel shuffle with 2 groups right after the
  expansion (a reshape/transpose, i.e. a memory permutation).
* **Seesaw-share**: no permutation at all. The projection's groups are laid out
  3/4 : 1/4 while the expansion's are 1/4 : 3/4, so the projection's large group
  reads the whole small expansion group plus half of the large one: channels are
  *shared* between groups by offsetting the group boundaries (and the next
  block's 1/4 : 3/4 expansion split again straddles this block's 3/4 : 1/4
  output). :class:`ChannelShare` is that re-partition as a named, zero-cost layer.

Both blocks have the same shapes, parameters and MAdds; they differ only in the
channel mixing, which is what the paper's "channel shuffle cost" claim compares.

Reading choices where the paper is silent or ambiguous (Fig. 1 is an image that
the text does not carry), taken from the author's public PyTorch code
(cvtower/seesawfacenet_pytorch) where it agrees with the paper's tables and
figures:

* uneven split 1/4 : 3/4 for both pointwise convolutions;
* shuffle with 2 groups after the expansion; share = offset projection groups;
* SE after the depthwise conv on the expanded tensor (MobileNetV3 placement),
  reduction 4, ReLU after the reduce layer, sigmoid gate, bias-free 1x1 layers.
  The paper does not say; the author's code uses PReLU and biased layers (+0.4%
  params), and the bias-free ReLU reading is the one closest to the paper's own
  parameter counts (the rule hwface follows where a paper is silent);
* swish (SiLU) after every non-linear conv, incl. the stem and the 1x1 conv 512;
* the projection stays linear, as every table row says ("1x1 Conv, Linear"),
  although Sec. 3.1 mentions "nonlinearity after the second pointwise conv";
* the final "linear 1x1 Conv" is a 512 -> 512 1x1 conv + BN (embedding 512,
  Sec. 3.2: "The embedding size ... is fixed to 512").

Table 2 (MobiFace-shaped) as printed repeats Table 1's last two rows; the net is
built at MobiFace's widths for the last stage (256 channels, E 512), which matches
the paper's 2.8M / 154M (the printed rows give 1.41M / 111M). Table 6 prints E 128
for the first DW-SeesawFaceNet block; E 192 (the author's code, t = 2) matches the
paper's 514M MAdds. The paper's parameter counts read as truncated to 0.1M: every
network here lands in [x, x + 0.1)M of its figure, and the MAdds match to 0.3%.
Table 1's 1.365M is +5.0% from the nominal "1.3M" (the author's biased PReLU SE
would give 1.370M, +5.4%). See each model's ``notes``.

DW-SeesawFaceNet V2 (Sec. 5.2) adds "a skip connection branch comprises a 2*2 max
pooling and a 1*1 convolution" to every stride-2 block without residual: here
MaxPool2d(2, 2) -> 1x1 conv (BN, swish), added to the block output. V1 has no
branch (the paper's V1/V2 gap, 0.1M params / 12M MAdds, matches the three
branches: 64.5K weights, 12.6M MAdds).
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
    SqueezeExcite,
    build_stages,
    depthwise,
    head_kernel,
    pointwise,
)
from hwface.models.registry import register_model

ACT = "swish"
SE_REDUCTION = 4
SE_ACT = "relu"
SE_BIAS = False
SHUFFLE_GROUPS = 2
SMALL_GROUP = 4  # the small uneven group is 1/SMALL_GROUP of the channels
EMBEDDING_DIM = 512
HEAD_CHANNELS = 512
TOTAL_STRIDE = 16
PAPER = "SeesawFaceNets (2019)"


def _uneven(ch: int) -> tuple[int, int]:
    """The 1/4 : 3/4 split of ``ch`` channels (small group first)."""
    if ch % SMALL_GROUP:
        raise ValueError(f"uneven 1/{SMALL_GROUP} split needs channels divisible by {SMALL_GROUP}, got {ch}")
    small = ch // SMALL_GROUP
    return small, ch - small


class UnevenGroupPointwise(nn.Module):
    """1x1 convolution with uneven groups (Seesaw-Net).

    The input channels are cut into consecutive groups of widths ``in_splits``;
    group ``i`` is mapped by its own 1x1 conv + BN + activation to
    ``out_splits[i]`` channels; the outputs are concatenated in group order.
    Parameters and MAdds are those of one grouped conv with unequal groups.

    Parameters
    ----------
    in_splits, out_splits : sequence of int
        Channel widths of the groups, same length.
    act : str
        Activation after each group's BN (``"none"`` for a linear projection).
    """

    def __init__(self, in_splits: Sequence[int], out_splits: Sequence[int], act: str) -> None:
        super().__init__()
        if len(in_splits) != len(out_splits):
            raise ValueError("in_splits and out_splits must have the same length")
        self.in_splits = [int(c) for c in in_splits]
        self.out_splits = [int(c) for c in out_splits]
        self.groups = nn.ModuleList(pointwise(i, o, act=act) for i, o in zip(self.in_splits, self.out_splits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.in_splits, dim=1)
        return torch.cat([conv(p) for conv, p in zip(self.groups, parts)], dim=1)

    def extra_repr(self) -> str:
        return f"in_splits={self.in_splits}, out_splits={self.out_splits}"


class ChannelShare(nn.Module):
    """Seesaw-share channel mixing: a re-partition of the channel groups.

    The tensor is left where it is (the forward is the identity and exports to no
    ONNX node); what changes is how the following uneven group conv cuts it: the
    producer wrote groups ``produced`` (e.g. E/4 | 3E/4) and the consumer reads
    groups :attr:`consumed` (3E/4 | E/4), so the consumer's large group shares
    channels from both producer groups. This is the paper's "channel share
    operation that enables the information flow between convolutional groups
    like channel shuffle ... without any channel permute/shuffle operation".

    Parameters
    ----------
    produced : sequence of int
        Group widths of the layer that wrote the tensor.
    """

    def __init__(self, produced: Sequence[int]) -> None:
        super().__init__()
        self.produced = [int(c) for c in produced]
        self.consumed = self.produced[::-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        return f"produced={self.produced}, consumed={self.consumed}"


class PoolConvSkip(nn.Sequential):
    """DW-SeesawFaceNet V2 skip branch of a stride-2 block: 2x2 max pool, 1x1 conv + BN + swish."""

    def __init__(self, in_ch: int, out_ch: int, act: str = ACT) -> None:
        super().__init__(nn.MaxPool2d(2, 2), pointwise(in_ch, out_ch, act=act))


class SeesawBlock(nn.Module):
    """Seesaw-shuffle / Seesaw-share bottleneck with SE (see the module docstring).

    Parameters
    ----------
    in_ch, out_ch : int
        Channels; both must be divisible by 4.
    expansion : float
        Hidden width is ``round(in_ch * expansion)`` (applied to the input, as in
        MobileFaceNets); must be divisible by 4.
    stride : int
        Stride of the depthwise conv.
    mixing : str
        ``"shuffle"`` or ``"share"``.
    skip : str
        ``"none"`` or ``"pool_conv"``: the V2 max-pool + 1x1 conv branch, added on
        blocks without residual whose stride is 2.
    kernel : int
        Depthwise kernel.
    act : str
        Non-linearity of the expansion and the depthwise conv.
    se : bool
        Squeeze-and-excitation on the expanded tensor after the depthwise conv.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        expansion: float,
        stride: int = 1,
        mixing: str = "shuffle",
        skip: str = "none",
        kernel: int = 3,
        act: str = ACT,
        se: bool = True,
    ) -> None:
        super().__init__()
        hidden = int(round(in_ch * expansion))
        hid_groups = _uneven(hidden)
        out_groups = _uneven(out_ch)
        self.use_residual = stride == 1 and in_ch == out_ch
        self.expand = UnevenGroupPointwise(_uneven(in_ch), hid_groups, act=act)
        if mixing == "shuffle":
            self.mix = ChannelShuffle(SHUFFLE_GROUPS)
            proj_in, proj_out = hid_groups, out_groups
        elif mixing == "share":
            self.mix = ChannelShare(hid_groups)
            proj_in, proj_out = self.mix.consumed, out_groups[::-1]
        else:
            raise ValueError(f"mixing must be 'shuffle' or 'share', got {mixing!r}")
        self.dw = depthwise(hidden, kernel, stride, act=act)
        self.se = SqueezeExcite(hidden, SE_REDUCTION, act=SE_ACT, bias=SE_BIAS) if se else nn.Identity()
        self.project = UnevenGroupPointwise(proj_in, proj_out, act="none")
        if skip == "pool_conv" and stride == 2 and not self.use_residual:
            self.skip = PoolConvSkip(in_ch, out_ch, act=act)
        elif skip in ("none", "pool_conv"):
            self.skip = None
        else:
            raise ValueError(f"skip must be 'none' or 'pool_conv', got {skip!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.mix(self.expand(x)))))
        if self.use_residual:
            return x + y
        if self.skip is not None:
            return y + self.skip(x)
        return y


def _seesaw_factory(mixing: str, skip: str):
    def make(in_ch: int, out_ch: int, t: float, stride: int) -> SeesawBlock:
        return SeesawBlock(in_ch, out_ch, t, stride, mixing=mixing, skip=skip)

    return make


BLOCKS = {
    "shuffle": _seesaw_factory("shuffle", "none"),
    "share": _seesaw_factory("share", "none"),
    "shuffle_v2": _seesaw_factory("shuffle", "pool_conv"),
}

# Tables: stem channels, then rows (block, t, c, n, s) = one row per "Block" /
# "RBlock" line of the paper. t is the expansion on the block's *input* width;
# the paper's hidden width (the "1x1 Conv, E" of the row) is in the comment.
# "Block" rows are the stride-2 blocks without residual, "RBlock" the residual ones.

# Table 1: SeesawFaceNet (112x112x3 -> 56x56x64 stem).
SEESAW_STEM = 64
SEESAW = (
    ("shuffle", 2, 64, 1, 2),  # Block   64 -> E 128 /2 -> 64
    ("shuffle", 2, 64, 4, 1),  # RBlock  4x E 128, 64
    ("shuffle", 4, 128, 1, 2),  # Block   64 -> E 256 /2 -> 128
    ("shuffle", 2, 128, 6, 1),  # RBlock  6x E 256, 128
    ("shuffle", 4, 128, 1, 2),  # Block  128 -> E 512 /2 -> 128
    ("shuffle", 2, 128, 2, 1),  # RBlock  2x E 256, 128
)

# Table 2: SeesawFaceNet with MobiFace's hyper-parameters (repeats 2 / 3 / 6).
# The last two rows take MobiFace's widths (output 256, E 512), not the printed
# "E 512 -> 128" / "E 256, 128" (a copy of Table 1's rows): see seesaw_shuffle_mobi.
SEESAW_MOBI = (
    ("shuffle", 2, 64, 1, 2),  # Block   64 -> E 128 /2 -> 64
    ("shuffle", 2, 64, 2, 1),  # RBlock  2x E 128, 64
    ("shuffle", 4, 128, 1, 2),  # Block   64 -> E 256 /2 -> 128
    ("shuffle", 2, 128, 3, 1),  # RBlock  3x E 256, 128
    ("shuffle", 4, 256, 1, 2),  # Block  128 -> E 512 /2 -> 256   (printed: -> 128)
    ("shuffle", 2, 256, 6, 1),  # RBlock  6x E 512, 256           (printed: E 256, 128)
)

# Table 6: DW-SeesawFaceNet (deeper and wider; 112x112x3 -> 56x56x96 stem).
DW_SEESAW_STEM = 96
DW_SEESAW = (
    ("shuffle", 2, 96, 1, 2),  # Block   96 -> E 192 /2 -> 96   (table prints E 128, see notes)
    ("shuffle", 2, 96, 8, 1),  # RBlock  8x E 192, 96
    ("shuffle", 4, 192, 1, 2),  # Block   96 -> E 384 /2 -> 192
    ("shuffle", 2, 192, 12, 1),  # RBlock 12x E 384, 192
    ("shuffle", 4, 192, 1, 2),  # Block  192 -> E 768 /2 -> 192
    ("shuffle", 2, 192, 4, 1),  # RBlock  4x E 384, 192
)


def with_block(table: Sequence[tuple], block: str) -> tuple:
    """The same stages built from another block kind (e.g. ``"share"``, ``"shuffle_v2"``)."""
    return tuple((block, *row[1:]) for row in table)


def seesaw_net(
    table: Sequence[tuple],
    stem: int,
    input_size: tuple[int, int] = (112, 112),
    embedding_dim: int = EMBEDDING_DIM,
    act: str = ACT,
) -> Embedding:
    """Build a SeesawFaceNet from a stage table.

    Parameters
    ----------
    table : sequence of (block, t, c, n, s)
        Stage rows; ``block`` is a key of :data:`BLOCKS`.
    stem : int
        Channels of the 3x3 stride-2 conv and the 3x3 depthwise conv after it.
    input_size : (int, int)
        Input (H, W) in pixels; sizes the global depthwise kernel.
    embedding_dim : int
        Output length of the final linear 1x1 conv.
    act : str
        Non-linearity of the stem and the 1x1 conv 512.
    """
    stages, ch = build_stages(table, stem, BLOCKS)
    backbone = nn.Sequential(
        ConvBNAct(3, stem, 3, 2, act=act),
        depthwise(stem, 3, 1, act=act),
        *stages,
        ConvBNAct(ch, HEAD_CHANNELS, 1, act=act),
    )
    head = nn.Sequential(
        GDConv(HEAD_CHANNELS, head_kernel(input_size, TOTAL_STRIDE)),
        ConvBNAct(HEAD_CHANNELS, embedding_dim, 1, act="none"),
    )
    return Embedding(backbone, head)


_COMMON = (
    "Seesaw block: uneven 1/4:3/4 group 1x1 convs (expand swish, project linear), "
    "3x3 DW swish, SE on the expanded tensor after the DW (r=4, ReLU, sigmoid, no bias: the "
    "paper is silent; the author's code uses PReLU and biases, +0.4% params, further from the paper), "
    "swish stem and 1x1 conv 512; linear GDConv + linear 1x1 conv 512 -> 512-D. "
    "Block details (split ratio, shuffle groups 2, SE placement and activation) follow "
    "the author's public code (cvtower/seesawfacenet_pytorch), since Fig. 1 is not in the text."
)
_TRUNCATED = (
    " The paper's parameter counts read as truncated, not rounded, to 0.1M: all four "
    "networks land inside [x, x+0.1)M (1.365M->'1.3M', 2.857M->'2.8M', 4.168M->'4.1M', "
    "4.233M->'4.2M'; rounding would make V1 '4.2M' like V2), while the MAdds match to 0.3%."
)
_TABLE1_TOL = (
    " Deviation: params +5.0% (1.365M vs '1.3M'; with the author's biased PReLU SE 1.370M, "
    "+5.4%), MAdds -0.1% (145.8M vs 146M). Nothing in the paper removes the ~65K weights a "
    "strict 1.3M would need; the figure reads as truncated (below)."
)


@register_model(
    "seesaw_shuffle",
    paper=f"{PAPER}, Table 1 (Seesaw-shuffleFaceNet)",
    embedding_dim=EMBEDDING_DIM,
    total_stride=TOTAL_STRIDE,
    paper_params=1.3e6,
    paper_madds=146e6,
    notes=_COMMON + " Shuffle: ChannelShuffle(2) right after the uneven expansion." + _TABLE1_TOL + _TRUNCATED,
)
def seesaw_shuffle(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """SeesawFaceNet (Table 1) with Seesaw-shuffle blocks.

    1.365M params (paper "1.3M", +5.0%, read as truncated), 145.8M MAdds (paper
    146M, -0.1%).
    """
    return seesaw_net(SEESAW, SEESAW_STEM, input_size, **kw)


@register_model(
    "seesaw_share",
    paper=f"{PAPER}, Table 1 (Seesaw-shareFaceNet)",
    embedding_dim=EMBEDDING_DIM,
    total_stride=TOTAL_STRIDE,
    paper_params=1.3e6,
    paper_madds=146e6,
    notes=_COMMON
    + " Share: no permutation; the projection's groups are 3/4:1/4 against the expansion's"
    " 1/4:3/4, so its large group reads channels of both (ChannelShare layer, zero cost;"
    " the author's code). Same params and MAdds as seesaw_shuffle."
    + _TABLE1_TOL
    + _TRUNCATED,
)
def seesaw_share(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """SeesawFaceNet (Table 1) with Seesaw-share blocks.

    Same figures as :func:`seesaw_shuffle`: 1.365M params (paper "1.3M", +5.0%),
    145.8M MAdds (paper 146M, -0.1%).
    """
    return seesaw_net(with_block(SEESAW, "share"), SEESAW_STEM, input_size, **kw)


@register_model(
    "seesaw_shuffle_mobi",
    paper=f"{PAPER}, Table 2 (Seesaw-shuffleFaceNet(mobi); figures in Table 4)",
    embedding_dim=EMBEDDING_DIM,
    total_stride=TOTAL_STRIDE,
    paper_params=2.8e6,
    paper_madds=154e6,
    notes=_COMMON
    + " Table 2 as printed repeats Table 1's last two rows (Block E512 -> 128, RBlock"
    " E256, 128), which gives 1.41M / 111M, far from the paper's 2.8M / 154M (Table 4)."
    " Sec. 5.1 says the net adopts MobiFace's hyper-parameters and structure, whose last"
    " stage is 256 channels with E 512 (Block 128 -> E512 /2 -> 256, 6x RBlock E512, 256,"
    " then 1x1 conv 256 -> 512); that reading gives 2.857M (+2.0%) / 153.6M (-0.3%) and is"
    " the one built. Head: the table's GDConv + linear 1x1 conv (not MobiFace's FC)."
    + _TRUNCATED,
)
def seesaw_shuffle_mobi(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """SeesawFaceNet with MobiFace's hyper-parameters (Table 2), Seesaw-shuffle blocks.

    Last stage at MobiFace's width 256 (E 512) instead of the printed 128 (E 256):
    2.857M params (paper 2.8M, +2.0%), 153.6M MAdds (paper 154M, -0.3%); the
    printed table would give 1.41M / 111M.
    """
    return seesaw_net(SEESAW_MOBI, SEESAW_STEM, input_size, **kw)


_DW_E192 = (
    " Table 6 prints E 128 for the first (stride-2) block; the author's code uses 192"
    " (= 2 x 96, like every other t=2 row), which gives 513.8M MAdds against the paper's"
    " 514M (E 128 would give 498.3M, -3.1%), so E 192 is built."
)


@register_model(
    "dw_seesaw_v1",
    paper=f"{PAPER}, Table 6 (DW-SeesawFaceNet V1; figures in Table 5)",
    embedding_dim=EMBEDDING_DIM,
    total_stride=TOTAL_STRIDE,
    paper_params=4.1e6,
    paper_madds=514e6,
    notes=_COMMON
    + _DW_E192
    + " V1 has no skip branch (Sec. 5.2; the author's V1 file has a strided 1x1 conv"
    " branch, which would give V1 the same MAdds as V2, contradicting 514M vs 526M)."
    " Deviation: params +1.7% (4.168M), MAdds -0.04% (513.8M)."
    + _TRUNCATED,
)
def dw_seesaw_v1(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """DW-SeesawFaceNet V1 (Table 6): deeper and wider Seesaw-shuffleFaceNet, no skip branch.

    4.168M params (paper 4.1M, +1.7%), 513.8M MAdds (paper 514M, -0.04%).
    """
    return seesaw_net(DW_SEESAW, DW_SEESAW_STEM, input_size, **kw)


@register_model(
    "dw_seesaw_v2",
    paper=f"{PAPER}, Table 6 + Sec. 5.2 (DW-SeesawFaceNet V2; figures in Table 5)",
    embedding_dim=EMBEDDING_DIM,
    total_stride=TOTAL_STRIDE,
    paper_params=4.2e6,
    paper_madds=526e6,
    notes=_COMMON
    + _DW_E192
    + " V2 adds MaxPool2d(2,2) -> 1x1 conv (BN, swish) as a skip branch on the three"
    " stride-2 blocks (no residual), summed with the block output; the 1x1 conv runs after"
    " the pool, which gives exactly the paper's V1->V2 gap (+12.6M MAdds). The author's code"
    " also builds (unused) branches in residual blocks; they are left out."
    " Deviation: params +0.8% (4.233M), MAdds +0.1% (526.5M)."
    + _TRUNCATED,
)
def dw_seesaw_v2(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """DW-SeesawFaceNet V2: V1 plus the 2x2 max-pool + 1x1 conv skip branch on stride-2 blocks.

    4.233M params (paper 4.2M, +0.8%), 526.5M MAdds (paper 526M, +0.1%).
    """
    return seesaw_net(with_block(DW_SEESAW, "shuffle_v2"), DW_SEESAW_STEM, input_size, **kw)
