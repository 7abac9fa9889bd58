"""FR-MBConv family: "Factorizing and Reconstituting Large-kernel MBConv for
Lightweight Face Recognition" (Lyu et al., ICCV-W 2019).

The paper's network (Table 3) is MobileNetV3-large reshaped for 112x112 faces: a
3x3 stem, five stages of FR-MBConv blocks (PReLU, SE-Post with ratio 0.25 and a
sigmoid gate) and the S2FC embedding head (DW3x3 stride 2, no padding, BN, FC,
BN). The ablations swap the block (Table 7), the head (Table 8) and the place of
the SE module (Table 9); here each ablation is a change of the table plus one
registered function.

What "FR kxk" means (Table 7, Sec. 3.1). "FR-MBConv kxk denotes the structure of
MBConv kxk after factorizing and reconstituting": the kxk depthwise convolution
of an MBConv is factorized into (k-1)/2 stacked 3x3 depthwise convolutions, which
have the same receptive field k, and the first of them is moved in front of the
expansion layer, into the compact space (reconstitution, Fig. 4 (d)).

* ``frmbconv_7x7`` -- the paper's base block (Fig. 2 (c)/(d)): DW3x3 (linear) ->
  PW expand -> DW3x3 -> DW3x3 (stride) -> PW project (linear) -> SE. Receptive
  field 7; depthwise MAdds (18e + 9) H W C instead of 49 e H W C (Table 2).
* ``frmbconv_3x3`` -- factorizing a 3x3 yields a single 3x3 and nothing to move,
  so the block is MBConv 3x3 with SE-Post; the paper says so: "FR-MBConv 3x3 is
  the same block as MBConv 3x3 except the location of SE module" (Sec. 4.4).
  Receptive field 3.
* ``mbconv_kxk`` -- plain MBConv with a kxk depthwise and MobileNetV3's SE-Pre
  (SE on the expanded tensor before the projection), PReLU, same table.

Blocks: each convolution is followed by BN. "Linear activation is applied after
the first depthwise convolution and the last pointwise convolution"; every other
convolution of the block is followed by PReLU. The stride sits on the last
depthwise convolution. The expansion layer is skipped when e = 1. Residual when
stride 1 and in == out. The SE module uses PReLU after its reduce layer and a
sigmoid gate (Sec. 3.2: "PReLU and sigmoid ... instead of ReLU and hard-sigmoid")
with hidden width channels // 4 of the tensor it gates.

Paper figures. Tables 7-9 give FLOPs in M "computed following the Lightweight
Face Recognition Challenge": insightface's flops_counter.py, which counts
(2K - 1) per output of a K-weight dot product, i.e. about two per multiply-add,
so paper_madds = FLOPs / 2. "Size" is the MXNet weight file in MiB: fp32
parameters plus the BN running mean/var (params + BN statistics of these models
match all eight sizes within 0.3%), so paper_params = size * 2**20 / 4 and the
parameter counts here sit 0.4-1.7% below it. With these readings MB3x3/5x5/7x7
and FR3x3 match Table 7 within 0.7% in MAdds; the networks built on the 7x7
FR-MBConv are ~5.3% above their FLOPs entries (see ``_FR7_DEVIATION``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hwface.models.blocks import (
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

ACT = "prelu"
SE_REDUCTION = 4  # SE ratio 0.25
STEM_CHANNELS = 32
TOTAL_STRIDE = 16

# Table 3. Rows: (block, e, c, n, s, kernel, se). ``kernel`` is the receptive
# field of the depthwise part: 7 for the base FR-MBConv (three 3x3 depthwise),
# k for MBConv kxk. ``se`` is "post" (paper) or "pre" (MobileNetV3, Table 9).
FRMBCONV_7x7 = (
    ("frmbconv", 1, 32, 2, 1, 7, "post"),
    ("frmbconv", 4, 48, 5, 2, 7, "post"),
    ("frmbconv", 6, 104, 6, 2, 7, "post"),
    ("frmbconv", 6, 144, 3, 1, 7, "post"),
    ("frmbconv", 6, 200, 5, 2, 7, "post"),
)


def _variant(table: Sequence[tuple], block: str | None = None, kernel: int | None = None, se: str | None = None) -> tuple:
    """Same stages with the block name, kernel (receptive field) or SE placement replaced."""
    return tuple(
        (block or b, e, c, n, s, kernel or k, se or q) for (b, e, c, n, s, k, q) in table
    )


FRMBCONV_3x3 = _variant(FRMBCONV_7x7, kernel=3)  # Table 7 "FR3x3"
FRMBCONV_SE_PRE = _variant(FRMBCONV_7x7, se="pre")  # Table 9 "SE-Pre"
MBCONV_3x3 = _variant(FRMBCONV_7x7, block="mbconv", kernel=3, se="pre")  # Table 7 "MB3x3"
MBCONV_5x5 = _variant(FRMBCONV_7x7, block="mbconv", kernel=5, se="pre")  # Table 7 "MB5x5"
MBCONV_7x7 = _variant(FRMBCONV_7x7, block="mbconv", kernel=7, se="pre")  # Table 7 "MB7x7"


def _se(ch: int) -> SqueezeExcite:
    return SqueezeExcite(ch, SE_REDUCTION, act=ACT, gate="sigmoid")


class FRMBConv(nn.Module):
    """FR-MBConv block (Fig. 2 (c)/(d)): an MBConv whose k x k depthwise
    convolution is factorized into (k-1)/2 stacked 3x3 depthwise convolutions
    (same receptive field k), the first of which is reconstituted in front of the
    expansion layer, in the compact space.

    Layer order for k = 7: DW3x3(C_in, linear) -> PW(C_in -> eC_in) -> DW3x3 ->
    DW3x3(stride) -> PW(eC_in -> C_out, linear) [-> SE-Post] (+ residual).
    For k = 3 there is nothing to factorize or move: PW -> DW3x3(stride) -> PW,
    i.e. MBConv 3x3.

    Parameters
    ----------
    in_ch, out_ch : int
    expansion : float
        e, applied to ``in_ch``; the expansion layer is skipped when e = 1.
    stride : int
        Stride of the last depthwise convolution.
    kernel : int
        Receptive field of the factorized depthwise stack (odd, >= 3).
    se : str
        ``"post"`` (after the projection, paper) or ``"pre"`` (on the expanded
        tensor before the projection, MobileNetV3 / Table 9) or ``"none"``.
    act : str
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        expansion: float,
        stride: int = 1,
        kernel: int = 7,
        se: str = "post",
        act: str = ACT,
    ) -> None:
        super().__init__()
        if kernel < 3 or kernel % 2 == 0:
            raise ValueError(f"FR-MBConv receptive field must be odd and >= 3, got {kernel}")
        if se not in ("none", "pre", "post"):
            raise ValueError(f"se must be none, pre or post, got {se!r}")
        n_dw = (kernel - 1) // 2  # 3x3 depthwise layers with receptive field `kernel`
        hidden = int(round(in_ch * expansion))
        self.kernel = kernel
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if n_dw > 1:  # reconstitution: first depthwise moved to the compact space, linear
            layers.append(depthwise(in_ch, 3, 1, act="none"))
        if hidden != in_ch:
            layers.append(pointwise(in_ch, hidden, act=act))
        n_expanded = max(n_dw - 1, 1)  # depthwise layers left in the expanded space
        for i in range(n_expanded):
            layers.append(depthwise(hidden, 3, stride if i == n_expanded - 1 else 1, act=act))
        if se == "pre":
            layers.append(_se(hidden))
        layers.append(pointwise(hidden, out_ch, act="none"))
        if se == "post":
            layers.append(_se(out_ch))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_residual else y


class MBConv(nn.Module):
    """MBConv k x k as used in Table 7: PW expand -> DW kxk(stride) [-> SE-Pre]
    -> PW project (linear) [-> SE-Post] (+ residual), PReLU, SE with PReLU and
    sigmoid, ratio 0.25 of the gated tensor.

    Same as :class:`hwface.models.blocks.InvertedResidual` except that the SE
    module uses PReLU (as the FR-MBConv of the same table) rather than ReLU.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        expansion: float,
        stride: int = 1,
        kernel: int = 3,
        se: str = "pre",
        act: str = ACT,
    ) -> None:
        super().__init__()
        if se not in ("none", "pre", "post"):
            raise ValueError(f"se must be none, pre or post, got {se!r}")
        hidden = int(round(in_ch * expansion))
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if hidden != in_ch:
            layers.append(pointwise(in_ch, hidden, act=act))
        layers.append(depthwise(hidden, kernel, stride, act=act))
        if se == "pre":
            layers.append(_se(hidden))
        layers.append(pointwise(hidden, out_ch, act="none"))
        if se == "post":
            layers.append(_se(out_ch))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_residual else y


BLOCKS = {"frmbconv": FRMBConv, "mbconv": MBConv}


# ---------------------------------------------------------------- heads (Table 8)


class S2FC(nn.Sequential):
    """The paper's embedding head (Sec. 3.2 (a)): DW3x3 stride 2, padding 0 -> BN
    -> FC -> BN1d. 7x7x200 -> 3x3x200 -> 512."""

    def __init__(self, ch: int, feat: tuple[int, int], dim: int = 512) -> None:
        h, w = ((feat[0] - 3) // 2 + 1, (feat[1] - 3) // 2 + 1)
        super().__init__(
            nn.Conv2d(ch, ch, 3, 2, 0, groups=ch, bias=False),
            nn.BatchNorm2d(ch),
            nn.Flatten(1),
            nn.Linear(ch * h * w, dim),
            nn.BatchNorm1d(dim),
        )


class FCHead(nn.Sequential):
    """ArcFace's "E" head without dropout (Table 8 "FC-512"): BN -> FC -> BN1d
    on the flattened last feature map."""

    def __init__(self, ch: int, feat: tuple[int, int], dim: int = 512) -> None:
        super().__init__(
            nn.BatchNorm2d(ch),
            nn.Flatten(1),
            nn.Linear(ch * feat[0] * feat[1], dim),
            nn.BatchNorm1d(dim),
        )


class GDCHead(nn.Sequential):
    """MobileFaceNet's head as insightface builds it (Table 8 "GDC-128"):
    Conv1x1(512)-BN-PReLU -> GDConv7x7-BN -> FC -> BN1d."""

    def __init__(self, ch: int, feat: tuple[int, int], dim: int = 128, width: int = 512) -> None:
        super().__init__(
            ConvBNAct(ch, width, 1, act=ACT),
            GDConv(width, feat),
            nn.Flatten(1),
            nn.Linear(width, dim),
            nn.BatchNorm1d(dim),
        )


HEADS = {"s2fc": S2FC, "fc": FCHead, "gdc": GDCHead}


def build_frmbconv(
    table: Sequence[tuple],
    input_size: tuple[int, int] = (112, 112),
    head: str = "s2fc",
    embedding_dim: int = 512,
) -> Embedding:
    """Stem Conv3x3(32, stride 2) + the stages of ``table`` + an embedding head.

    Parameters
    ----------
    table : sequence of (block, e, c, n, s, kernel, se)
    input_size : (int, int)
        Input (H, W) in pixels; the head is sized to the last feature map
        (H/16, W/16).
    head : str
        ``"s2fc"``, ``"fc"`` or ``"gdc"`` (Table 8).
    embedding_dim : int
    """
    stem = ConvBNAct(3, STEM_CHANNELS, 3, 2, act=ACT)
    stages, ch = build_stages(table, STEM_CHANNELS, BLOCKS)
    feat = head_kernel(input_size, TOTAL_STRIDE)
    return Embedding(nn.Sequential(stem, *stages), HEADS[head](ch, feat, embedding_dim))


# ---------------------------------------------------------------- registry

_PAPER = "FR-MBConv (ICCV-W 2019)"
_MIB = 2**20 / 4  # parameters per MiB of fp32 weights


def _paper_params(size_mb: float) -> float:
    """Tables 7-9 "Size" (MiB of the MXNet weight file) as a parameter count."""
    return size_mb * _MIB


def _paper_madds(flops_m: float) -> float:
    """Tables 7-9 FLOPs (LFR counter: multiply and add counted separately) as MAdds."""
    return flops_m * 1e6 / 2


_COMMON = """
Figures: the paper's FLOPs come from the LFR challenge counter (insightface
flops_counter.py), which counts (2K - 1) per output of a K-weight dot product, so
paper_madds = FLOPs / 2. "Size" is the MXNet weight file in MiB (fp32), so
paper_params = size * 2**20 / 4; the file also holds the BN running mean/var, which is
why the parameter counts here sit 0.4-1.7% below (params + BN statistics match every
size in Tables 7-9 within 0.3%).
"""

_FR7_DEVIATION = """
MAdds are ~5.3% above the paper: every network built on the 7x7 FR-MBConv
(Table 3, the SE-Pre variant of Table 9, the FC and GDC heads of Table 8) exceeds its
FLOPs entry by the same ~25 M MAdds, while MB3x3/5x5/7x7 and FR3x3 match Table 7 within
0.7% and the head differences of Table 8 (+8 M FLOPs for FC and GDC) are reproduced
exactly. The block follows the text (three 3x3 depthwise, the first in the compact space,
stride on the last depthwise); the text's own claim "FR-MBConv 7x7 reduces FLOPs by 11%
vs MBConv 7x7" holds for this block (-10.7%) but not for Table 7's 1022 vs 1205 (-15%),
and Table 2's DWF (18e+9 vs 9e for FR3x3) predicts ~33 M MAdds between FR7x7 and FR3x3
where Table 7 shows 6.5 M. No stride placement matches 1022 either (stride on the first
depthwise: 495 M MAdds, on the middle: 533 M). Tolerance 0.06 for this reason.
"""


def _notes(specific: str, deviation: str = "") -> str:
    return "\n".join(part.strip() for part in (specific, deviation, _COMMON) if part.strip())


@register_model(
    "frmbconv_7x7",
    paper=f"{_PAPER}, Table 3 (Table 7 FR7x7)",
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=_paper_params(19.8),
    paper_madds=_paper_madds(1022),
    tolerance=0.06,
    notes=_notes(
        """
The paper's network: Table 3 with the base FR-MBConv, whose three 3x3 depthwise layers
have the receptive field of the 7x7 depthwise they replace ("FR7x7" of Table 7), SE-Post
(ratio 0.25, PReLU + sigmoid), PReLU, S2FC-512 head (DW3x3 s2 p0-BN-FC-BN).
Stem has 32 channels as in Table 3 (the text's "24 channels" is before width scaling).
Params -1.5% (size), MAdds +5.3%.
""",
        _FR7_DEVIATION,
    ),
)
def frmbconv_7x7(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """FR-MBConv network of Table 3 (FR-MBConv 7x7 blocks, SE-Post, S2FC-512)."""
    return build_frmbconv(FRMBCONV_7x7, input_size=input_size, **kw)


@register_model(
    "frmbconv_3x3",
    paper=f"{_PAPER}, Table 7 FR3x3",
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=_paper_params(19.0),
    paper_madds=_paper_madds(1009),
    notes=_notes(
        """
"FR kxk" is MBConv kxk after factorizing and reconstituting, named by the receptive field
of its depthwise stack. A 3x3 factorizes into one 3x3 with nothing to move, so FR3x3 is
MBConv 3x3 with SE-Post ("the same block as MBConv 3x3 except the location of SE
module", Sec. 4.4), in the Table 3 network. Params -0.8% (size), MAdds +0.1%.
"""
    ),
)
def frmbconv_3x3(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """Table 7 FR3x3: Table 3 network with receptive-field-3 FR-MBConv (= MBConv 3x3, SE-Post)."""
    return build_frmbconv(FRMBCONV_3x3, input_size=input_size, **kw)


@register_model(
    "mbconv_3x3",
    paper=f"{_PAPER}, Table 7 MB3x3",
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=_paper_params(38.6),
    paper_madds=_paper_madds(1019),
    notes=_notes(
        """
Table 3 network with every FR-MBConv replaced by MBConv 3x3 with MobileNetV3's SE-Pre
(SE on the expanded tensor; "the same kernel size and SE settings in each network"),
PReLU, S2FC-512 head. SE-Pre is what doubles the size vs FR3x3 (38.6 vs 19.0 MB).
Params -0.4% (size), MAdds +0.2%.
"""
    ),
)
def mbconv_3x3(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """Table 7 MB3x3: Table 3 network with MBConv 3x3 (SE-Pre) blocks."""
    return build_frmbconv(MBCONV_3x3, input_size=input_size, **kw)


@register_model(
    "mbconv_5x5",
    paper=f"{_PAPER}, Table 7 MB5x5",
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=_paper_params(39.4),
    paper_madds=_paper_madds(1087),
    notes=_notes(
        """
As mbconv_3x3 with 5x5 depthwise kernels. Params -0.5% (size), MAdds +0.7%.
"""
    ),
)
def mbconv_5x5(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """Table 7 MB5x5: Table 3 network with MBConv 5x5 (SE-Pre) blocks."""
    return build_frmbconv(MBCONV_5x5, input_size=input_size, **kw)


@register_model(
    "mbconv_7x7",
    paper=f"{_PAPER}, Table 7 MB7x7",
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=_paper_params(40.6),
    paper_madds=_paper_madds(1205),
    notes=_notes(
        """
As mbconv_3x3 with 7x7 depthwise kernels: the large-kernel MBConv that FR-MBConv 7x7
factorizes (same receptive field). Params -0.7% (size), MAdds +0.0%.
"""
    ),
)
def mbconv_7x7(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """Table 7 MB7x7: Table 3 network with MBConv 7x7 (SE-Pre) blocks."""
    return build_frmbconv(MBCONV_7x7, input_size=input_size, **kw)


@register_model(
    "frmbconv_fc512",
    paper=f"{_PAPER}, Table 8 FC-512",
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=_paper_params(35.4),
    paper_madds=_paper_madds(1030),
    tolerance=0.06,
    notes=_notes(
        """
frmbconv_7x7 with ArcFace's embedding head without dropout (BN-FC-BN on the flattened
7x7x200 map) instead of S2FC. Params -0.8% (size), MAdds +5.3%; the head itself adds
the paper's +8 M FLOPs over S2FC exactly (here +4.1 M MAdds).
""",
        _FR7_DEVIATION,
    ),
)
def frmbconv_fc512(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """Table 8 FC-512: frmbconv_7x7 with the ArcFace BN-FC-BN head."""
    return build_frmbconv(FRMBCONV_7x7, input_size=input_size, head="fc", **kw)


@register_model(
    "frmbconv_gdc128",
    paper=f"{_PAPER}, Table 8 GDC-128",
    embedding_dim=128,
    total_stride=TOTAL_STRIDE,
    paper_params=_paper_params(17.0),
    paper_madds=_paper_madds(1030),
    tolerance=0.06,
    notes=_notes(
        """
frmbconv_7x7 with MobileFaceNet's head as insightface builds it (Conv1x1 512-BN-PReLU,
GDConv 7x7-BN, FC 128-BN), 128-d, instead of S2FC. Params -1.7% (size), MAdds +5.3%; the
head itself adds the paper's +8 M FLOPs over S2FC (here +4.2 M MAdds).
""",
        _FR7_DEVIATION,
    ),
)
def frmbconv_gdc128(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """Table 8 GDC-128: frmbconv_7x7 with the MobileFaceNet GDC head, 128-d."""
    kw.setdefault("embedding_dim", 128)
    return build_frmbconv(FRMBCONV_7x7, input_size=input_size, head="gdc", **kw)


@register_model(
    "frmbconv_se_pre",
    paper=f"{_PAPER}, Table 9 SE-Pre",
    embedding_dim=512,
    total_stride=TOTAL_STRIDE,
    paper_params=_paper_params(39.4),
    paper_madds=_paper_madds(1032),
    tolerance=0.06,
    notes=_notes(
        """
frmbconv_7x7 with the SE module in the expanded space, after the last depthwise and
before the projection (MobileNetV3's placement; SE hidden width = expanded channels / 4).
Table 9's prose swaps the two names ("SE-Pre denotes projection layer followed by SE");
the reading here follows Sec. 3.2 and the sizes (SE-Pre 39.4 MB, twice SE-Post).
Params -0.8% (size), MAdds +5.3%.
""",
        _FR7_DEVIATION,
    ),
)
def frmbconv_se_pre(input_size: tuple[int, int] = (112, 112), **kw) -> nn.Module:
    """Table 9 SE-Pre: frmbconv_7x7 with SE before the projection layer."""
    return build_frmbconv(FRMBCONV_SE_PRE, input_size=input_size, **kw)
