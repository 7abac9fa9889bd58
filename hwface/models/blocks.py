"""Reusable, parametrized building blocks shared by the zoo families.

Every block is a plain ``nn.Module`` whose submodules are leaf layers that the
analysis (:mod:`hwface.analysis`) and the ONNX exporter see one by one.
Family-specific blocks (Seesaw, FR-MBConv, ...) live in their family module and
are built from these.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
from torch import nn

ACTIVATIONS = ("relu", "relu6", "prelu", "swish", "hardswish", "sigmoid", "none")


def make_act(kind: str, channels: int) -> nn.Module:
    """Activation layer by name.

    Parameters
    ----------
    kind : str
        One of ``relu``, ``relu6``, ``prelu`` (one slope per channel), ``swish`` (SiLU),
        ``hardswish``, ``sigmoid``, ``none``.
    channels : int
        Channel count (used by PReLU).
    """
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "relu6":
        return nn.ReLU6(inplace=True)
    if kind == "prelu":
        return nn.PReLU(channels)
    if kind == "swish":
        return nn.SiLU(inplace=True)
    if kind == "hardswish":
        return nn.Hardswish(inplace=True)
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r}; expected one of {', '.join(ACTIVATIONS)}")


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + activation.

    Parameters
    ----------
    in_ch, out_ch : int
        Channels.
    kernel : int or (int, int)
        Kernel size; ``padding`` defaults to ``kernel // 2`` ("same" for odd kernels).
    stride : int
    groups : int
        ``in_ch`` for a depthwise convolution.
    act : str
        See :func:`make_act`.
    padding : int or (int, int), optional
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int | tuple[int, int] = 3,
        stride: int = 1,
        groups: int = 1,
        act: str = "prelu",
        padding: int | tuple[int, int] | None = None,
    ) -> None:
        k = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        if padding is None:
            padding = (k[0] // 2, k[1] // 2)
        super().__init__(
            nn.Conv2d(in_ch, out_ch, k, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            make_act(act, out_ch),
        )


def depthwise(ch: int, kernel: int | tuple[int, int] = 3, stride: int = 1, act: str = "prelu") -> ConvBNAct:
    """Depthwise k x k convolution + BN + activation."""
    return ConvBNAct(ch, ch, kernel, stride, groups=ch, act=act)


def pointwise(in_ch: int, out_ch: int, groups: int = 1, act: str = "prelu") -> ConvBNAct:
    """1 x 1 (optionally grouped) convolution + BN + activation."""
    return ConvBNAct(in_ch, out_ch, 1, 1, groups=groups, act=act)


class GDConv(nn.Sequential):
    """Global depthwise convolution (MobileFaceNets, Sec. 3.2): a depthwise conv whose
    kernel covers the whole last feature map, no padding, + BN, linear."""

    def __init__(self, ch: int, kernel: tuple[int, int]) -> None:
        super().__init__(
            nn.Conv2d(ch, ch, kernel, 1, 0, groups=ch, bias=False),
            nn.BatchNorm2d(ch),
        )


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global average pool, 1x1 reduce, act, 1x1 expand, gate.

    Parameters
    ----------
    ch : int
        Channels of the gated tensor.
    reduction : int
        Hidden width is ``max(1, ch // reduction)``.
    act : str
        Activation after the reduce conv.
    gate : str
        ``sigmoid`` (default) or ``hsigmoid``.
    bias : bool
        Whether the two 1x1 convs carry a bias.
    """

    def __init__(self, ch: int, reduction: int = 4, act: str = "relu", gate: str = "sigmoid",
                 bias: bool = True) -> None:
        super().__init__()
        hidden = max(1, ch // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(ch, hidden, 1, bias=bias)
        self.act = make_act(act, hidden)
        self.expand = nn.Conv2d(hidden, ch, 1, bias=bias)
        self.gate = nn.Hardsigmoid() if gate == "hsigmoid" else nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle: reshape (g, C/g), transpose, flatten."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.groups
        return x.reshape(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class InvertedResidual(nn.Module):
    """MobileNetV2 bottleneck: 1x1 expand, k x k depthwise, 1x1 linear project,
    residual when stride is 1 and channels match.

    Parameters
    ----------
    in_ch, out_ch : int
    expansion : float
        Hidden width is ``round(in_ch * expansion)`` (applied to the input size,
        as MobileNetV2 and MobileFaceNets define t).
    stride : int
    kernel : int
        Depthwise kernel.
    act : str
        Activation after expand and depthwise.
    se : str
        ``"none"``, ``"pre"`` (SE on the expanded tensor before projection) or
        ``"post"`` (SE on the projected output, before the residual add).
    se_reduction : int
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        expansion: float,
        stride: int = 1,
        kernel: int = 3,
        act: str = "prelu",
        se: str = "none",
        se_reduction: int = 4,
    ) -> None:
        super().__init__()
        hidden = int(round(in_ch * expansion))
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if hidden != in_ch:
            layers.append(pointwise(in_ch, hidden, act=act))
        layers.append(depthwise(hidden, kernel, stride, act=act))
        if se == "pre":
            layers.append(SqueezeExcite(hidden, se_reduction))
        layers.append(pointwise(hidden, out_ch, act="none"))
        if se == "post":
            layers.append(SqueezeExcite(out_ch, se_reduction))
        elif se not in ("none", "pre"):
            raise ValueError(f"se must be none, pre or post, got {se!r}")
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_residual else y


BlockFactory = Callable[..., nn.Module]


def build_stages(
    table: Iterable[Sequence],
    in_ch: int,
    blocks: dict[str, BlockFactory],
) -> tuple[nn.Sequential, int]:
    """Decode an architecture table into a sequence of layers.

    Each row is ``(block, t, c, n, s, *extra)`` as in the papers' tables: block
    name, expansion factor, output channels, repeats, stride of the first repeat.
    ``blocks[block](in_ch, c, t, stride, *extra)`` builds one repeat.

    Returns
    -------
    (nn.Sequential, int)
        The stages and the channel count they end with.
    """
    layers: list[nn.Module] = []
    ch = in_ch
    for row in table:
        block, t, c, n, s, *extra = row
        try:
            factory = blocks[block]
        except KeyError:
            raise ValueError(f"table names block {block!r}; known: {', '.join(blocks)}") from None
        for i in range(n):
            layers.append(factory(ch, c, t, s if i == 0 else 1, *extra))
            ch = c
    return nn.Sequential(*layers), ch


def head_kernel(input_size: tuple[int, int], total_stride: int) -> tuple[int, int]:
    """Size of the last feature map, i.e. the global depthwise kernel, for an input (H, W)."""
    return input_size[0] // total_stride, input_size[1] // total_stride


class Embedding(nn.Module):
    """Wraps a backbone and a head; ``forward`` returns a flat (N, D) embedding."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.head(self.backbone(x)), 1)
