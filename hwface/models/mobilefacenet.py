"""MobileFaceNets (Chen et al., CCBR 2018) and the EFaR-2023 MMobileFaceNet.

Every network of the family is one architecture table that mirrors the paper's
table row by row, ``(operator, t, c, n, s)``: operator, expansion factor (applied
to the block's *input* channels, as MobileFaceNets Table 1 says), output
channels, repeats, stride of the first repeat. The rows from ``linear_gdconv``
on form the embedding head; everything before it is the backbone. The global
depthwise kernel is the last feature map, ``head_kernel(input_size, 16)``
(7x7 at 112x112, 7x6 at 112x96, 6x6 at 96x96).

Operators (all convolutions are followed by BatchNorm, as in the paper's
training graph; BN folding happens at deployment):

``conv3x3``         full 3x3 convolution + BN + act
``dwconv3x3``       depthwise 3x3 + BN + act
``gconv3x3``        grouped 3x3 + BN + act; extra column: groups
``bottleneck``      MobileNetV2 residual bottleneck (1x1 expand + act, 3x3
                    depthwise + act, linear 1x1 project; residual when stride 1 and
                    channels match). The 1x1 expansion conv is always present, also
                    at t = 1 (MobileFaceNet's block, see :class:`Bottleneck`).
``conv1x1``         pointwise conv + BN + act (the "early dimension reduction" layer)
``linear_gdconv``   global depthwise conv, no activation (Sec. 3.2)
``linear_conv1x1``  1x1 conv + BN, no activation: the embedding layer

Activations are PReLU (one slope per channel) unless a variant says otherwise.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from hwface.models.blocks import (
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
HEAD_OPS = ("linear_gdconv", "linear_conv1x1")

# MobileFaceNets, Table 1 (input 112x112x3).
MOBILEFACENET = (
    # operator          t     c    n  s
    ("conv3x3",        None, 64,  1, 2),  # 112^2 x 3   -> 56^2
    ("dwconv3x3",      None, 64,  1, 1),  # 56^2 x 64
    ("bottleneck",     2,    64,  5, 2),  # 56^2 x 64   -> 28^2
    ("bottleneck",     4,    128, 1, 2),  # 28^2 x 64   -> 14^2
    ("bottleneck",     2,    128, 6, 1),  # 14^2 x 128
    ("bottleneck",     4,    128, 1, 2),  # 14^2 x 128  -> 7^2
    ("bottleneck",     2,    128, 2, 1),  # 7^2 x 128
    ("conv1x1",        None, 512, 1, 1),  # 7^2 x 512
    ("linear_gdconv",  None, 512, 1, 1),  # GDConv7x7 -> 1^2 x 512
    ("linear_conv1x1", None, 128, 1, 1),  # 128-d embedding
)

# MobileFaceNet-M: "remove the linear 1x1 convolution layer after the linear GDConv
# layer" -> the 512-d GDConv output is the embedding.
MOBILEFACENET_M = MOBILEFACENET[:-1]

# MobileFaceNet-S: "from MobileFaceNet-M, removing the 1x1 convolution layer before
# the linear GDConv layer" -> GDConv runs on the 128 channels of the last bottleneck.
MOBILEFACENET_S = MOBILEFACENET[:-3] + (("linear_gdconv", None, 128, 1, 1),)

# MobileFaceNet (expansion factor x2): the paper does not say which expansion factors
# are doubled. Doubling t of the first bottleneck stage (the five 64-channel blocks,
# 2 -> 4) gives 1.095M params, the reading closest to the paper's 1.1M; doubling every
# t would give 1.841M (+67%). See the model's notes.
MOBILEFACENET_EXP2 = tuple(
    (op, t * 2, c, n, s) if (op, c) == ("bottleneck", 64) else (op, t, c, n, s) for op, t, c, n, s in MOBILEFACENET
)

# EFaR-2023 Sec. 3.2 / Fig. 1: the "unaltered MobileFaceNet" with a 512-d embedding.
MOBILEFACENET_EFAR = MOBILEFACENET[:-1] + (("linear_conv1x1", None, 512, 1, 1),)

# EFaR-2023 Fig. 2, MMobileFaceNet: the channel numbers of every conv layer up to the
# last bottleneck doubled (64 -> 128, 128 -> 256), conv1x1 and GDConv stay at 512
# (as Fig. 2 prints them), 512-d embedding (Sec. 3.2: "we retained the embedding
# feature vector ... which stands at 512"; Fig. 2's "128" contradicts the text and
# Fig. 1's feature size 512). Reading chosen for t: the printed t (2, 4, 2, 4, 2) is
# applied to the *original* channel numbers, i.e. the bottlenecks' hidden widths of
# Table 1 (128, 256, 256, 512, 256) are kept, so relative to the doubled inputs t is
# halved. This is the only reading that gives the paper's 2.1M parameters / 8.4 MB
# (it equals insightface arcface_torch's `mbf`, scale=2); doubling the hidden widths
# too gives 3.68M (+75%) and 847M MAdds (+85%).
MMOBILEFACENET = (
    # operator          t     c    n  s
    ("conv3x3",        None, 128, 1, 2),
    ("gconv3x3",       None, 128, 1, 1, 64),  # Table 1's 64-group "depthwise" conv, 2 ch/group
    ("bottleneck",     1,    128, 5, 2),  # hidden 128 = 2 x 64
    ("bottleneck",     2,    256, 1, 2),  # hidden 256 = 4 x 64
    ("bottleneck",     1,    256, 6, 1),  # hidden 256 = 2 x 128
    ("bottleneck",     2,    256, 1, 2),  # hidden 512 = 4 x 128
    ("bottleneck",     1,    256, 2, 1),  # hidden 256 = 2 x 128
    ("conv1x1",        None, 512, 1, 1),
    ("linear_gdconv",  None, 512, 1, 1),
    ("linear_conv1x1", None, 512, 1, 1),
)


class Bottleneck(InvertedResidual):
    """MobileFaceNet bottleneck: :class:`~hwface.models.blocks.InvertedResidual` whose
    1x1 expansion conv is kept even when ``t == 1`` (MobileNetV2 drops it there; the
    MobileFaceNet reference implementations and MMobileFaceNet's parameter count
    keep it)."""

    def __init__(self, in_ch: int, out_ch: int, expansion: float, stride: int = 1, act: str = "prelu") -> None:
        super().__init__(in_ch, out_ch, expansion, stride, 3, act=act)
        hidden = int(round(in_ch * expansion))
        if hidden == in_ch:
            self.body = nn.Sequential(pointwise(in_ch, hidden, act=act), *self.body)


class LinearConv1x1(nn.Sequential):
    """The linear embedding layer: 1x1 conv + BN, no activation."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))


def _blocks(act: str, kernel: tuple[int, int]) -> dict:
    def gdconv(i: int, c: int, t, s: int) -> nn.Module:
        if c != i:
            raise ValueError(f"linear_gdconv keeps channels ({i}), table says {c}")
        return GDConv(i, kernel)

    return {
        "conv3x3": lambda i, c, t, s: ConvBNAct(i, c, 3, s, act=act),
        "dwconv3x3": lambda i, c, t, s: depthwise(i, 3, s, act=act),
        "gconv3x3": lambda i, c, t, s, groups: ConvBNAct(i, c, 3, s, groups=groups, act=act),
        "bottleneck": lambda i, c, t, s: Bottleneck(i, c, t, s, act=act),
        "conv1x1": lambda i, c, t, s: pointwise(i, c, act=act),
        "linear_gdconv": gdconv,
        "linear_conv1x1": lambda i, c, t, s: LinearConv1x1(i, c),
    }


def build_mobilefacenet(
    table: Sequence[tuple],
    input_size: tuple[int, int] = (112, 112),
    act: str = "prelu",
) -> Embedding:
    """Build a MobileFaceNet-family network from its architecture table.

    Parameters
    ----------
    table : sequence of (operator, t, c, n, s)
        Rows as in MobileFaceNets Table 1; the rows from the first head operator
        (``linear_gdconv``) on form the head.
    input_size : (int, int)
        Input (H, W) in pixels, multiples of 16; sets the GDConv kernel.
    act : str
        ``prelu`` (paper) or ``relu`` (the ReLU variant).

    Returns
    -------
    Embedding
        Maps (N, 3, H, W) to (N, D) with D the ``c`` of the last row.
    """
    split = next((i for i, row in enumerate(table) if row[0] in HEAD_OPS), len(table))
    blocks = _blocks(act, head_kernel(input_size, TOTAL_STRIDE))
    backbone, ch = build_stages(table[:split], 3, blocks)
    head, _ = build_stages(table[split:], ch, blocks)
    return Embedding(backbone, head)


_T2 = "MobileFaceNets (CCBR 2018), Table 2"


@register_model(
    "mobilefacenet",
    paper="MobileFaceNets (CCBR 2018), Table 1",
    input_size=(112, 112),
    embedding_dim=128,
    total_stride=TOTAL_STRIDE,
    paper_params=0.99e6,
    paper_madds=221e6,
    notes="""
Table 1 as printed; every conv followed by BN (the paper trains with BN and folds it
for deployment), including the final linear 1x1 conv (+256 params). Counting BN and
PReLU parameters gives 1.003M (+1.3% vs 0.99M; convolution weights alone: 0.976M,
-1.4%); MAdds 220.97M (-0.0% vs 221M).
""",
)
def mobilefacenet(input_size=(112, 112), act: str = "prelu", **kw) -> nn.Module:
    """Primary MobileFaceNet (Table 1): 112x112 input, GDConv7x7, 128-d, PReLU."""
    return build_mobilefacenet(MOBILEFACENET, input_size, act)


@register_model(
    "mobilefacenet_112x96",
    paper=_T2,
    input_size=(112, 96),
    embedding_dim=128,
    total_stride=TOTAL_STRIDE,
    paper_params=0.99e6,
    notes="""
Table 1 at 112x96 input (GDConv 7x6). 1.000M params (+1.0% vs 0.99M); the paper gives
no MAdds for it (computed: 189.4M).
""",
)
def mobilefacenet_112x96(input_size=(112, 96), **kw) -> nn.Module:
    """MobileFaceNet (112 x 96): Table 1 with a 7x6 GDConv."""
    return build_mobilefacenet(MOBILEFACENET, input_size)


@register_model(
    "mobilefacenet_96x96",
    paper=_T2,
    input_size=(96, 96),
    embedding_dim=128,
    total_stride=TOTAL_STRIDE,
    paper_params=0.99e6,
    notes="""
Table 1 at 96x96 input (GDConv 6x6). 0.997M params (+0.7% vs 0.99M); the paper gives
no MAdds for it (computed: 162.4M).
""",
)
def mobilefacenet_96x96(input_size=(96, 96), **kw) -> nn.Module:
    """MobileFaceNet (96 x 96): Table 1 with a 6x6 GDConv."""
    return build_mobilefacenet(MOBILEFACENET, input_size)


@register_model(
    "mobilefacenet_m",
    paper=_T2,
    input_size=(112, 112),
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=0.92e6,
    notes="""
Table 1 without the linear 1x1 conv after GDConv (Sec. 3.3), so the embedding is the
512-d GDConv output. 0.937M params (+1.9% vs 0.92M); MAdds 220.9M (none in the paper).
""",
)
def mobilefacenet_m(input_size=(112, 112), **kw) -> nn.Module:
    """MobileFaceNet-M: no linear 1x1 conv after the GDConv; 512-d embedding."""
    return build_mobilefacenet(MOBILEFACENET_M, input_size)


@register_model(
    "mobilefacenet_s",
    paper=_T2,
    input_size=(112, 112),
    embedding_dim=128,
    total_stride=TOTAL_STRIDE,
    paper_params=0.84e6,
    notes="""
MobileFaceNet-M without the 1x1 conv before GDConv (Sec. 3.3): GDConv7x7 runs on the
128 channels of the last bottleneck and gives the 128-d embedding. 0.851M params
(+1.3% vs 0.84M); MAdds 217.7M (none in the paper).
""",
)
def mobilefacenet_s(input_size=(112, 112), **kw) -> nn.Module:
    """MobileFaceNet-S: neither the 1x1 conv before nor the one after the GDConv."""
    return build_mobilefacenet(MOBILEFACENET_S, input_size)


@register_model(
    "mobilefacenet_relu",
    paper=_T2,
    input_size=(112, 112),
    embedding_dim=128,
    total_stride=TOTAL_STRIDE,
    paper_params=0.98e6,
    paper_madds=221e6,
    notes="""
Table 1 with ReLU instead of PReLU everywhere. 0.996M params (+1.6% vs 0.98M; the
difference to the primary is the 7.6k PReLU slopes); MAdds 220.97M, as the primary.
""",
)
def mobilefacenet_relu(input_size=(112, 112), **kw) -> nn.Module:
    """MobileFaceNet (ReLU): Table 1 with ReLU non-linearities."""
    return build_mobilefacenet(MOBILEFACENET, input_size, act="relu")


@register_model(
    "mobilefacenet_exp2",
    paper=_T2,
    input_size=(112, 112),
    embedding_dim=128,
    total_stride=TOTAL_STRIDE,
    paper_params=1.1e6,
    notes="""
Reading: the paper does not say which expansion factors "expansion factor x2" doubles.
Doubling t of the first bottleneck stage (the five 64-channel blocks at 28x28, t 2 -> 4)
gives 1.095M params (-0.5% vs the paper's 1.1M) and 309.0M MAdds; it is the reading
closest to the paper's figure (the rule hwface follows). Alternatives: every t doubled
(2 -> 4, 4 -> 8) gives 1.841M (+67%) and 431.4M MAdds; doubling only one of the later
stages gives 1.056M-1.419M. Table 2's phone speed (27 ms vs 24 ms for the primary net)
suggests a modest MAdds increase, which the all-doubled reading (+95% MAdds) contradicts.
""",
)
def mobilefacenet_exp2(input_size=(112, 112), **kw) -> nn.Module:
    """MobileFaceNet (expansion factor x2): the first bottleneck stage's t doubled (see notes)."""
    return build_mobilefacenet(MOBILEFACENET_EXP2, input_size)


_EFAR = "Lightweight Face Recognition: An Improved MobileFaceNet Model (EFaR-2023), Fig. 1/3"


@register_model(
    "mobilefacenet_efar",
    paper=_EFAR,
    input_size=(112, 112),
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=1.1e6,
    paper_madds=236.75e6,
    tolerance=0.10,
    notes="""
The "unaltered MobileFaceNet" of EFaR-2023 with its 512-d feature (Fig. 1), 112x112
input (Fig. 1 caption): Table 1 with the linear 1x1 conv widened to 512 outputs (=
insightface arcface_torch `mbf` at scale=1). 1.200M params (+9.1% vs the paper's
1.1M): Table 1 (0.99M) plus the 384 x 512 extra embedding weights cannot be less than
1.19M, so the paper's 1.1M is rounded down or counts differently. EFaR's "FLOPs" are
multiply-adds plus element-wise BN/PReLU work (a profiler count, not 2 x MAdds):
MAdds 221.2M (-6.6% vs 236.75M); counting BN (2/elem) and PReLU (1/elem) as ptflops
does gives 230.3M (-2.7%). Tolerance 0.10 for these two documented deviations.
""",
)
def mobilefacenet_efar(input_size=(112, 112), **kw) -> nn.Module:
    """MobileFaceNet as used in EFaR-2023: Table 1 with a 512-d linear embedding."""
    return build_mobilefacenet(MOBILEFACENET_EFAR, input_size)


_MM_NOTES = """
Reading (chosen because it is the only one that matches the paper's 2.1M params and
8.4 MB): channels doubled (64 -> 128, 128 -> 256) in the stem, the depthwise conv and
the bottlenecks' inputs/outputs, but the bottlenecks' hidden widths of Table 1 kept
(the printed t applies to the original channel numbers, i.e. t 1,2,1,2,1 on the doubled
channels; the 1x1 expansion conv is kept at t = 1). conv1x1 and GDConv stay at 512 as
Fig. 2 prints them; embedding 512-d as the text and Fig. 1 say (Fig. 2's "128" is taken
as a leftover from MobileFaceNets Table 1). The "Depthwise Conv3x3" after the stem keeps
Table 1's 64 groups with twice the kernels (2 channels per group, as arcface_torch's
`mbf` does); a true 128-group depthwise conv would be -1.2k params and -3.6M MAdds
(433.9M, -5.0%).
Doubling the hidden widths too would give 3.68M params (+75%) and 847M MAdds.
"""


@register_model(
    "mmobilefacenet",
    paper="Lightweight Face Recognition: An Improved MobileFaceNet Model (EFaR-2023), Fig. 2",
    input_size=(112, 96),
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=2.1e6,
    notes=_MM_NOTES
    + """
Fig. 2's input, 112x96 with a GDConv 7x6 (the network as the paper's table defines it).
2.056M params (-2.1% vs 2.1M). MAdds 375.1M: the paper's 456.89M FLOPs do not fit this
input (-18%) but fit a 112x112 input, as Fig. 1's caption says for all solutions, so the
FLOPs figure is checked on `mmobilefacenet_112x112` and not here.
""",
)
def mmobilefacenet(input_size=(112, 96), **kw) -> nn.Module:
    """MMobileFaceNet (EFaR-2023, 2-5M track): MobileFaceNet with doubled channels, 112x96 input."""
    return build_mobilefacenet(MMOBILEFACENET, input_size)


@register_model(
    "mmobilefacenet_112x112",
    paper="Lightweight Face Recognition: An Improved MobileFaceNet Model (EFaR-2023), Fig. 1/3",
    input_size=(112, 112),
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=2.1e6,
    paper_madds=456.89e6,
    notes=_MM_NOTES
    + """
Input 112x112 (GDConv 7x7), as Fig. 1's caption says for all solutions and as both
FLOPs figures of Fig. 3 imply. 2.060M params (-1.9% vs 2.1M); 437.5M MAdds (-4.2% vs
456.89M; EFaR's FLOPs include element-wise BN/PReLU work: ptflops-style 448.8M, -1.8%).
""",
)
def mmobilefacenet_112x112(input_size=(112, 112), **kw) -> nn.Module:
    """MMobileFaceNet at the 112x112 input that the paper's FLOPs figure implies."""
    return build_mobilefacenet(MMOBILEFACENET, input_size)
