"""``build(spec)``: the PyTorch network of an arch spec, made of the zoo's block classes.

Nothing here defines a block: stems, blocks and heads are the classes of
:mod:`hwface.models` (``ConvBNAct``, ``GDConv``, ``FRMBConv``, ``MBConv``,
MobileFaceNet's ``Bottleneck`` and ``LinearConv1x1``, ``SeesawBlock``, the
FR-MBConv heads ``S2FC`` and ``FCHead``), wired in the order the zoo's family
builders use, so a spec of a zoo network gives the zoo network layer for layer
(same layers, shapes, parameters and MAdds) and goes through the same
export -> Relax -> fuse path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwface.nas.spec import ArchSpec, HeadSpec, StageSpec, StemSpec

if TYPE_CHECKING:  # torch is imported inside the functions: importing hwface.nas stays cheap
    from torch import nn

def _stem_layers(stem: StemSpec) -> list["nn.Module"]:
    from hwface.models.blocks import ConvBNAct

    act = stem.act
    layers = [ConvBNAct(3, stem.width, 3, 2, act=act)]
    if stem.dwconv:
        groups = stem.dwconv_groups or stem.width
        layers.append(ConvBNAct(stem.width, stem.width, 3, 1, groups=groups, act=act))
    return layers


def _se_mode(stage: StageSpec) -> str:
    return stage.se_placement if stage.se else "none"


def make_block(stage: StageSpec, in_ch: int, stride: int) -> "nn.Module":
    """One block of ``stage`` from ``in_ch`` channels with ``stride`` (the zoo's class for ``stage.block``).

    Parameters
    ----------
    stage : StageSpec
    in_ch : int
        Input channels of this block.
    stride : int
        Stride of this block (the stage's for its first block, 1 for the others).
    """
    from hwface.models.frmbconv import FRMBConv, MBConv
    from hwface.models.mobilefacenet import Bottleneck
    from hwface.models.seesaw import SeesawBlock

    act, e, c = stage.act, stage.expansion, stage.width
    if stage.block == "mbconv":
        return MBConv(in_ch, c, e, stride, kernel=stage.kernel, se=_se_mode(stage), act=act)
    if stage.block == "frmbconv":
        return FRMBConv(in_ch, c, e, stride, kernel=stage.kernel, se=_se_mode(stage), act=act)
    if stage.block == "mfn_bottleneck":
        return Bottleneck(in_ch, c, e, stride, act=act)  # kernel 3, no SE: checked by the spec
    mixing = stage.block.removeprefix("seesaw_")
    return SeesawBlock(in_ch, c, e, stride, mixing=mixing, skip=stage.skip, kernel=stage.kernel, act=act,
                       se=stage.se)


def _stage_layers(stages: tuple[StageSpec, ...], in_ch: int) -> list["nn.Module"]:
    layers = []
    for stage in stages:
        for i in range(stage.depth):
            layers.append(make_block(stage, in_ch, stage.stride if i == 0 else 1))
            in_ch = stage.width
    return layers


def _fc_projection(ch: int, dim: int) -> list["nn.Module"]:
    from torch import nn

    return [nn.Flatten(1), nn.Linear(ch, dim), nn.BatchNorm1d(dim)]  # as frmbconv's GDCHead ends


def _head(spec: ArchSpec) -> "nn.Sequential":
    from torch import nn

    from hwface.models.blocks import GDConv, pointwise
    from hwface.models.frmbconv import S2FC, FCHead
    from hwface.models.mobilefacenet import LinearConv1x1

    head: HeadSpec = spec.head
    ch = spec.stages[-1].width
    layers: list[nn.Module] = []
    if head.conv_width is not None:
        layers.append(pointwise(ch, head.conv_width, act=head.act))
        ch = head.conv_width
    if head.kind == "s2fc":
        return nn.Sequential(*layers, S2FC(ch, spec.feature_size, spec.embedding))
    if head.kind == "fc":
        return nn.Sequential(*layers, FCHead(ch, spec.feature_size, spec.embedding))
    layers.append(GDConv(ch, spec.feature_size) if head.kind == "gdconv" else nn.AdaptiveAvgPool2d(1))
    if head.projection == "conv":
        layers.append(LinearConv1x1(ch, spec.embedding))
    elif head.projection == "fc":
        layers.extend(_fc_projection(ch, spec.embedding))
    return nn.Sequential(*layers)


def build_untrained(spec: ArchSpec) -> "nn.Module":
    """The network of ``spec`` with PyTorch's default initialisation, in train mode.

    Returns
    -------
    hwface.models.blocks.Embedding
        ``backbone`` (stem + blocks) and ``head``; maps (N, 3, H, W) to (N, ``spec.embedding``).
    """
    from torch import nn

    from hwface.models.blocks import Embedding

    if not isinstance(spec, ArchSpec):
        raise TypeError(f"build expects an ArchSpec, got {type(spec).__name__}")
    stem = _stem_layers(spec.stem)
    backbone = nn.Sequential(*stem, *_stage_layers(spec.stages, spec.stem.width))
    return Embedding(backbone, _head(spec))


def build(spec: ArchSpec, seed: int = 0, calibrate: bool = True) -> "nn.Module":
    """The PyTorch network of an arch spec, in eval mode, with reproducible weights.

    As :func:`hwface.models.create_model` does for zoo networks: weights are drawn
    from ``seed`` and, with ``calibrate``, BatchNorm statistics are set from one
    forward pass of a fixed random batch (4 crops), so that parity checks across
    runtimes compare non-trivial embeddings.

    Parameters
    ----------
    spec : ArchSpec
    seed : int
        Seed of the weights and of the calibration batch.
    calibrate : bool
        Calibrate BatchNorm statistics (costs one forward pass of batch 4).

    Returns
    -------
    torch.nn.Module
        Maps (N, 3, H, W) float32 crops, (H, W) = ``spec.input_size`` px, to (N, ``spec.embedding``).
    """
    import torch

    from hwface.models.registry import calibrate_batchnorm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_untrained(spec)
        if calibrate:
            calibrate_batchnorm(model, spec.input_size)
    return model.eval()
