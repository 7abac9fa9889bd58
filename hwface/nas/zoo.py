"""The zoo networks that fit the arch-spec grammar, as specs decoded from the zoo's own tables.

:func:`zoo_spec` reads the family tables of :mod:`hwface.models` (MobileFaceNets
Table 1 and its variants, SeesawFaceNets Tables 1, 2 and 6, FR-MBConv Table 3
and its ablations) and the options each registered builder passes, so a spec and
the zoo network cannot drift apart silently: the tests hold every spec to its
zoo network layer by layer (shapes, parameters, MAdds). Zoo networks outside the
grammar are listed in :data:`ZOO_NOT_FITTING` with the reason.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from hwface.nas.spec import ArchSpec, HeadSpec, StageSpec, StemSpec

ZOO_NOT_FITTING: dict[str, str] = {
    "mobilenetv1_face": (
        "stride-1 stem (the grammar's stem is a stride-2 3x3 conv); MobileNetV1's depthwise-separable layers "
        "(DW3x3 + act, PW + act, no expansion conv, no residual) are not a block of the grammar"),
    "shufflenet_g3_face": (
        "stride-1 stem followed by a 3x3 max pool; ShuffleNet units (grouped 1x1 convs, channel shuffle, "
        "average-pool concat shortcut at stride 2, ReLU after the merge) are not a block of the grammar"),
    "mobilenetv2_face": (
        "stride-1 stem without a depthwise conv, and ReLU6 everywhere (not one of the grammar's "
        "activations); its bottlenecks and conv1x1 + GAP head alone would fit (mbconv, gap head)"),
    "mobilenetv2_gdconv_face": (
        "as mobilenetv2_face (stride-1 stem, ReLU6); its GDConv head alone would fit"),
    "iresnet100": (
        "stride-1 stem; improved residual units (BN-conv3x3-BN-PReLU-conv3x3-BN with a conv1x1 shortcut) "
        "are not an inverted bottleneck of the grammar; dropout head"),
}


# ---------------------------------------------------------------- MobileFaceNets


def _mobilefacenet_spec(table: Sequence[tuple], input_size: tuple[int, int], act: str) -> ArchSpec:
    """Decode a MobileFaceNets-style table (hwface.models.mobilefacenet) into a spec."""
    stem_kw: dict[str, Any] = {"act": act, "dwconv": False}
    stages: list[StageSpec] = []
    head_kw: dict[str, Any] = {"conv_width": None, "act": act, "projection": "none"}
    embedding = None
    for op, t, c, n, s, *extra in table:
        if op == "conv3x3":
            stem_kw["width"] = c
        elif op in ("dwconv3x3", "gconv3x3"):
            stem_kw.update(dwconv=True, dwconv_groups=extra[0] if extra else None)
        elif op == "bottleneck":
            stages.append(StageSpec("mfn_bottleneck", c, n, s, 3, t, False, act))
        elif op == "conv1x1":
            head_kw["conv_width"] = c
        elif op == "linear_gdconv":
            head_kw["kind"], embedding = "gdconv", c
        elif op == "linear_conv1x1":
            head_kw["projection"], embedding = "conv", c
        else:
            raise ValueError(f"MobileFaceNet table operator {op!r} has no arch-spec reading")
    return ArchSpec(tuple(input_size), StemSpec(**stem_kw), tuple(stages), HeadSpec(**head_kw), embedding)


def _mobilefacenet_entries() -> dict[str, Callable[[tuple[int, int]], ArchSpec]]:
    from hwface.models import mobilefacenet as mfn

    def entry(table: Sequence[tuple], act: str = "prelu") -> Callable[[tuple[int, int]], ArchSpec]:
        return lambda size: _mobilefacenet_spec(table, size, act)

    return {
        "mobilefacenet": entry(mfn.MOBILEFACENET),
        "mobilefacenet_112x96": entry(mfn.MOBILEFACENET),
        "mobilefacenet_96x96": entry(mfn.MOBILEFACENET),
        "mobilefacenet_m": entry(mfn.MOBILEFACENET_M),
        "mobilefacenet_s": entry(mfn.MOBILEFACENET_S),
        "mobilefacenet_relu": entry(mfn.MOBILEFACENET, act="relu"),
        "mobilefacenet_exp2": entry(mfn.MOBILEFACENET_EXP2),
        "mobilefacenet_efar": entry(mfn.MOBILEFACENET_EFAR),
        "mmobilefacenet": entry(mfn.MMOBILEFACENET),
        "mmobilefacenet_112x112": entry(mfn.MMOBILEFACENET),
    }


# ---------------------------------------------------------------- SeesawFaceNets

_SEESAW_BLOCK = {"shuffle": ("seesaw_shuffle", "none"), "share": ("seesaw_share", "none"),
                 "shuffle_v2": ("seesaw_shuffle", "pool_conv")}


def _seesaw_spec(table: Sequence[tuple], stem: int, input_size: tuple[int, int]) -> ArchSpec:
    """Decode a SeesawFaceNets stage table (hwface.models.seesaw) into a spec, with seesaw_net's stem and head."""
    from hwface.models import seesaw

    act = seesaw.ACT
    stages = []
    for block, t, c, n, s in table:
        kind, skip = _SEESAW_BLOCK[block]
        skip = skip if s == 2 else "none"  # SeesawBlock adds the V2 branch on stride-2 blocks only
        stages.append(StageSpec(kind, c, n, s, 3, t, True, act, se_placement="pre", skip=skip))
    head = HeadSpec("gdconv", seesaw.HEAD_CHANNELS, act, "conv")
    return ArchSpec(tuple(input_size), StemSpec(stem, act, True), tuple(stages), head, seesaw.EMBEDDING_DIM)


def _seesaw_entries() -> dict[str, Callable[[tuple[int, int]], ArchSpec]]:
    from hwface.models import seesaw as ss

    def entry(table: Sequence[tuple], stem: int) -> Callable[[tuple[int, int]], ArchSpec]:
        return lambda size: _seesaw_spec(table, stem, size)

    return {
        "seesaw_shuffle": entry(ss.SEESAW, ss.SEESAW_STEM),
        "seesaw_share": entry(ss.with_block(ss.SEESAW, "share"), ss.SEESAW_STEM),
        "seesaw_shuffle_mobi": entry(ss.SEESAW_MOBI, ss.SEESAW_STEM),
        "dw_seesaw_v1": entry(ss.DW_SEESAW, ss.DW_SEESAW_STEM),
        "dw_seesaw_v2": entry(ss.with_block(ss.DW_SEESAW, "shuffle_v2"), ss.DW_SEESAW_STEM),
    }


# ---------------------------------------------------------------- FR-MBConv

# build_frmbconv's heads as spec heads: (kind, conv_width, projection).
_FR_HEADS = {"s2fc": ("s2fc", None, "fc"), "fc": ("fc", None, "fc"), "gdc": ("gdconv", 512, "fc")}


def _frmbconv_spec(table: Sequence[tuple], input_size: tuple[int, int], head: str, embedding: int) -> ArchSpec:
    """Decode an FR-MBConv table (hwface.models.frmbconv) into a spec, with build_frmbconv's stem and head."""
    from hwface.models import frmbconv as fr

    act = fr.ACT
    stages = tuple(
        StageSpec(block, c, n, s, k, e, se != "none", act, se_placement=None if se == "none" else se)
        for block, e, c, n, s, k, se in table
    )
    kind, conv_width, projection = _FR_HEADS[head]
    stem = StemSpec(fr.STEM_CHANNELS, act, False)
    return ArchSpec(tuple(input_size), stem, stages, HeadSpec(kind, conv_width, act, projection), embedding)


def _frmbconv_entries() -> dict[str, Callable[[tuple[int, int]], ArchSpec]]:
    from hwface.models import frmbconv as fr

    def entry(table: Sequence[tuple], head: str = "s2fc", dim: int = 512) -> Callable[[tuple[int, int]], ArchSpec]:
        return lambda size: _frmbconv_spec(table, size, head, dim)

    return {
        "frmbconv_7x7": entry(fr.FRMBCONV_7x7),
        "frmbconv_3x3": entry(fr.FRMBCONV_3x3),
        "frmbconv_se_pre": entry(fr.FRMBCONV_SE_PRE),
        "mbconv_3x3": entry(fr.MBCONV_3x3),
        "mbconv_5x5": entry(fr.MBCONV_5x5),
        "mbconv_7x7": entry(fr.MBCONV_7x7),
        "frmbconv_fc512": entry(fr.FRMBCONV_7x7, head="fc"),
        "frmbconv_gdc128": entry(fr.FRMBCONV_7x7, head="gdc", dim=128),
    }


# ---------------------------------------------------------------- API


def _entries() -> dict[str, Callable[[tuple[int, int]], ArchSpec]]:
    return {**_mobilefacenet_entries(), **_seesaw_entries(), **_frmbconv_entries()}


def zoo_spec_names() -> list[str]:
    """Names of the zoo networks that :func:`zoo_spec` reproduces, sorted."""
    return sorted(_entries())


def zoo_spec(name: str, input_size: tuple[int, int] | None = None) -> ArchSpec | None:
    """The arch spec of zoo network ``name``, or None when it does not fit the grammar.

    Parameters
    ----------
    name : str
        Zoo name (see :func:`hwface.models.list_models`); an unknown name raises
        :class:`hwface.models.UnknownModelError`.
    input_size : (int, int), optional
        Input (H, W) in pixels; the registry's default for the network.

    Returns
    -------
    ArchSpec or None
        ``build(zoo_spec(name))`` has the zoo network's layers, shapes, parameters
        and MAdds; None for the networks in :data:`ZOO_NOT_FITTING`.
    """
    from hwface.models import get_model_info
    from hwface.models.registry import check_input_size

    info = get_model_info(name)
    entry = _entries().get(name)
    if entry is None:
        return None
    return entry(check_input_size(info, input_size or info.input_size))
