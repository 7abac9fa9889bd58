"""The papers' efficiency claims, each a function of the measured data that returns its figures and verdict.

Every claim compares latencies as ratios ``a / b`` (networks, stages or kernels)
beside the paper's own ratio (FLOPs or MAdds, or the paper's measured ms), hwface's
MAdds ratio, the onnxruntime ratio, the predicted ratio and others' published
figures; :mod:`hwface.claims.verdict` turns the ratios into the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from hwface.claims.data import ClaimsData, KernelFigure
from hwface.claims.verdict import Expectation, Verdict, rank_verdict, verdict


@dataclass
class Comparison:
    """One ratio ``a / b`` and its figures (None where there is none)."""

    label: str
    a: str
    b: str
    paper: float | None = None  # the paper's ratio (FLOPs, or its measured ms)
    madds: float | None = None  # hwface's MAdds ratio
    measured: float | None = None  # TVM, tuned at the budget
    onnxruntime: float | None = None
    predicted: float | None = None
    published: dict[str, float] = field(default_factory=dict)
    a_us: float | None = None  # TVM latencies behind ``measured``
    b_us: float | None = None
    disturbed: bool = False  # a network's end-to-end run fails the additivity check: left out of the verdicts


@dataclass
class Claim:
    """A paper's claim, its comparisons and the verdicts computed from them (TVM, onnxruntime, predicted)."""

    id: str
    title: str
    source: str  # paper and table
    words: str  # the paper's words, or their gist where marked
    expect: Expectation
    comparisons: list[Comparison]
    notes: list[str] = field(default_factory=list)
    figures: dict[str, float | None] = field(default_factory=dict)  # claim-wide numbers (rank correlations)
    verdict: Verdict | None = None
    verdict_onnxruntime: Verdict | None = None
    verdict_predicted: Verdict | None = None
    kernel_bars: list[dict] = field(default_factory=list)  # per-kernel stacks for a chart
    min_tau: float | None = None  # a ranking claim: its verdicts rest on the figures' Kendall tau, not the ratios

    def judge(self) -> "Claim":
        """Compute the three verdicts: from the Kendall tau figures (ranking claims), else from the comparisons."""
        if self.min_tau is not None:
            self.verdict, self.verdict_onnxruntime, self.verdict_predicted = (
                rank_verdict(self.figures.get(f"Kendall tau{engine}"), self.min_tau)
                for engine in ("", ", onnxruntime", ", predicted"))
        else:
            sound = [c for c in self.comparisons if not c.disturbed]
            self.verdict = verdict(self.expect, [(c.label, c.measured) for c in sound])
            self.verdict_onnxruntime = verdict(self.expect, [(c.label, c.onnxruntime) for c in sound])
            self.verdict_predicted = verdict(self.expect, [(c.label, c.predicted) for c in self.comparisons])
        return self

    @property
    def networks(self) -> set[str]:
        return {n for c in self.comparisons for n in (c.a, c.b) if not n.startswith(("stage:", "kernel:"))}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def net_pair(data: ClaimsData, a: str, b: str, label: str | None = None, paper: float | None = None,
             published: dict[str, float] | None = None) -> Comparison:
    """Networks ``a`` vs ``b``: paper ratio (default: the paper's MAdds), MAdds, TVM, onnxruntime, predicted."""
    na, nb = data.networks[a], data.networks[b]
    return Comparison(
        label or f"{a} / {b}", a, b,
        paper=paper if paper is not None else _ratio(na.paper_madds, nb.paper_madds),
        madds=_ratio(na.madds, nb.madds), measured=_ratio(na.tvm_us, nb.tvm_us),
        onnxruntime=_ratio(na.ort_us, nb.ort_us), predicted=_ratio(na.predicted_us, nb.predicted_us),
        published=published or {}, a_us=na.tvm_us, b_us=nb.tvm_us,
        disturbed=na.additive is False or nb.additive is False)


# -- kernels and stages ---------------------------------------------------------------
def _dw(k: KernelFigure, size: int) -> bool:
    key = k.key
    return key.op == "dwconv" and key.kernel == (size, size) and key.stride == (1, 1)


def _median(values: list[float]) -> float | None:
    import numpy as np

    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def stage_sums(kernels: list[KernelFigure], which: str) -> dict[int, float]:
    """Per output resolution (H of the NCHW output), the sum of calls x latency (``which``: measured or predicted)."""
    out: dict[int, float] = {}
    for k in kernels:
        v = getattr(k, f"{which}_us")
        if v is not None and len(k.key.output_shape) == 4:
            out[k.key.output_shape[2]] = out.get(k.key.output_shape[2], 0.0) + v * k.calls
    return out


# -- the claims ---------------------------------------------------------------------
OFA_NOTE10_K7_OVER_K3 = {56: 2.37, 28: 1.83, 14: 1.45, 7: 1.16}  # once-for-all's Note10 table, MBConv block
STAGE_RESOLUTIONS = (56, 28, 14, 7)


def dw7_vs_3x3(data: ClaimsData) -> Claim:
    """FR-MBConv: a depthwise 7x7 factorized into three 3x3s, per stage shape, per stage and per network."""
    comps: list[Comparison] = []
    bars: list[dict] = []
    mb7, fr7 = data.networks["mbconv_7x7"], data.networks["frmbconv_7x7"]
    for h in STAGE_RESOLUTIONS:
        dw7 = [k for k in mb7.kernels if _dw(k, 7) and k.key.input_shapes[0][2] == h]
        if not dw7:
            continue
        c = dw7[0].key.input_shapes[0][1]
        dw3 = [k for k in fr7.kernels if _dw(k, 3) and k.key.input_shapes[0][1:3] == (c, h)]
        m7, m3 = _median([k.measured_us for k in dw7]), _median([k.measured_us for k in dw3])
        p7, p3 = _median([k.predicted_us for k in dw7]), _median([k.predicted_us for k in dw3])
        comps.append(Comparison(
            f"3 x DW3x3 / DW7x7 at {h}x{h}x{c}", f"kernel:dw3x3@{h}", f"kernel:dw7x7@{h}", paper=27 / 49,
            madds=27 / 49, measured=_ratio(3 * m3 if m3 else None, m7), predicted=_ratio(3 * p3 if p3 else None, p7),
            a_us=3 * m3 if m3 else None, b_us=m7))
        bars.append({"label": f"{h}x{h}", "dw7x7_us": m7, "dw3x3_us": m3})
    s3, s7 = stage_sums(data.networks["mbconv_3x3"].kernels, "measured"), stage_sums(mb7.kernels, "measured")
    p3, p7 = stage_sums(data.networks["mbconv_3x3"].kernels, "predicted"), stage_sums(mb7.kernels, "predicted")
    for h in STAGE_RESOLUTIONS:
        if h in s3 and h in s7:
            comps.append(Comparison(
                f"MBConv3x3 / MBConv7x7 stages at {h}x{h}", f"stage:mb3@{h}", f"stage:mb7@{h}",
                measured=_ratio(s3[h], s7[h]), predicted=_ratio(p3.get(h), p7.get(h)),
                published={"once-for-all Note10 (k3/k7 block)": 1 / OFA_NOTE10_K7_OVER_K3[h]}, a_us=s3[h], b_us=s7[h]))
    comps += [net_pair(data, "frmbconv_7x7", "mbconv_7x7"), net_pair(data, "mbconv_3x3", "mbconv_7x7"),
              net_pair(data, "mbconv_5x5", "mbconv_7x7"), net_pair(data, "frmbconv_3x3", "mbconv_3x3")]
    return Claim(
        "dw7_vs_3x3", "Depthwise 7x7 vs factorized 3x3s", "FR-MBConv (ICCV-W 2019), Tables 1-2 and 7",
        "\"we first factorize the 7x7 depthwise convolution into three 3x3 depthwise convolutions inside the "
        "MBConv\" (DWF 27e·H·W·C against 49e·H·W·C, Table 2); \"Comparing with original 7x7 MBConv, our 7x7 "
        "FR-MBConv reduces FLOPs and model size by 11% and 50%\" (Table 7: 1022 vs 1205 MFLOPs).",
        Expectation.faster(0.05), comps, kernel_bars=bars,
        notes=["Kernel rows: the DW7x7 of mbconv_7x7 and the DW3x3 of frmbconv_7x7 at the same input shape "
               "(stride 1, median over the blocks); the stack is three such calls. Stages: every kernel of the "
               "network whose output has that resolution.",
               "frmbconv_3x3 vs mbconv_3x3 isolates SE-Post vs SE-Pre (FR3x3 has nothing to factorize)."]).judge()


def shuffle_vs_share(data: ClaimsData) -> Claim:
    """SeesawFaceNets: channel share instead of channel shuffle, and the shuffle's own kernels' share of time."""
    comp = net_pair(data, "seesaw_share", "seesaw_shuffle")
    shuffle = data.networks["seesaw_shuffle"]
    moved = sum((k.measured_us or 0) * k.calls for k in shuffle.kernels if k.key.op in ("transpose", "reshape"))
    total = sum((k.measured_us or 0) * k.calls for k in shuffle.kernels)
    figures = {"shuffle kernels' share of seesaw_shuffle's kernel time": moved / total if total else None}
    return Claim(
        "shuffle_vs_share", "Channel shuffle vs channel share", "SeesawFaceNets (2019), Sec. 3, Table 1",
        "\"Seesaw-share block could achieve better efficiency compared with channel permute/shuffle based block "
        "under the limited computational budgets, since memory transfer lead to more time and power consumption "
        "on mobile platform.\"",
        Expectation.faster(0.02), [comp], figures=figures,
        notes=["Published beside it: ShuffleNet V2's guideline G4, element-wise operations cost about 17% of a "
               "bottleneck's time on ARM and GPU.",
               "The shuffle's kernels are seesaw_shuffle's transpose and reshape kernels (TVM may fuse a shuffle "
               "into its neighbours, then it costs no kernel of its own)."]).judge()


def activations_and_se(data: ClaimsData) -> Claim:
    """Swish/PReLU/ReLU and SE placement cost little (pairs of zoo networks that differ in one thing)."""
    comps = [
        net_pair(data, "mobilefacenet", "mobilefacenet_relu", "PReLU / ReLU (mobilefacenet)", paper=24 / 23,
                 published={"MobileNetV3 Table 5, h-swish / ReLU (optimized)": 1.018}),
        net_pair(data, "frmbconv_se_pre", "frmbconv_7x7", "SE-Pre / SE-Post (frmbconv)", paper=1032 / 1022),
        net_pair(data, "mbconv_3x3", "frmbconv_3x3", "SE-Pre / SE-Post (3x3 blocks)", paper=1019 / 1009),
        *(net_pair(data, a, b, label, published=published) for a, b, label, published in VARIANT_PAIRS
          if a in data.networks and b in data.networks),
    ]
    return Claim(
        "activations_and_se", "Activation and SE overhead", "SeesawFaceNets Sec. 3; FR-MBConv Table 9; "
        "MobileFaceNets Table 2",
        "Swish is used \"due to its accuracy improvement over PReLU and ReLU\" and sigmoid is \"not take[n] into "
        "account\" in MAdds; SE-Post \"can reduce model size significantly with minor performance degradation\" "
        "(Table 9: SE-Pre 1032, SE-Post 1022 MFLOPs); MobileFaceNet PReLU 24 ms vs ReLU 23 ms.",
        Expectation.costs_little(0.10), comps,
        notes=["Published beside it: ShuffleNet V2 Table 8, SE adds 1% FLOPs and about 20% latency on ARM; "
               "MobileNetV3 Table 5, h-swish +1.8% optimized, +14% unoptimized over ReLU."]).judge()


# Zoo networks with one thing changed (hwface.nas.variants): the cost of that one thing, nothing else.
VARIANT_NETWORKS = ("seesaw_share@act=relu", "seesaw_share@se=off", "seesaw_share@act=hardswish",
                    "seesaw_share@act=prelu")
VARIANT_PAIRS = (
    ("seesaw_share", "seesaw_share@act=relu", "swish / ReLU (seesaw_share, one change)", None),
    ("seesaw_share", "seesaw_share@act=prelu", "swish / PReLU (seesaw_share, one change)", None),
    ("seesaw_share@act=hardswish", "seesaw_share@act=relu", "h-swish / ReLU (seesaw_share, one change)",
     {"MobileNetV3 Table 5 (optimized)": 1.018, "MobileNetV3 Table 5 (unoptimized)": 1.14}),
    ("seesaw_share", "seesaw_share@se=off", "SE on / off (seesaw_share, one change)",
     {"ShuffleNet V2 Table 8 (ARM)": 1.20}),
)


MOBILEFACENETS_TABLE2_MS = {
    "mobilenetv1_face": 60, "shufflenet_g3_face": 27, "mobilenetv2_face": 49, "mobilenetv2_gdconv_face": 50,
    "mobilefacenet": 24, "mobilefacenet_112x96": 21, "mobilefacenet_96x96": 18, "mobilefacenet_m": 24,
    "mobilefacenet_s": 23, "mobilefacenet_relu": 23, "mobilefacenet_exp2": 27,
}


MIN_RANKED = 6  # networks a rank correlation needs before a verdict rests on it


def rank_correlations(x: list[float], y: list[float]) -> tuple[float | None, float | None]:
    """Spearman's rho and Kendall's tau of two orders (None with fewer than :data:`MIN_RANKED` points)."""
    from scipy.stats import kendalltau, spearmanr

    if len(x) < MIN_RANKED:
        return None, None
    return float(spearmanr(x, y).statistic), float(kendalltau(x, y).statistic)


def mobilefacenets_ranking(data: ClaimsData) -> Claim:
    """MobileFaceNets Table 2's speed ranking (Snapdragon 820, ncnn) against ours."""
    comps = [net_pair(data, m, "mobilefacenet", paper=ms / 24) for m, ms in MOBILEFACENETS_TABLE2_MS.items()
             if m != "mobilefacenet"]
    have = [m for m in MOBILEFACENETS_TABLE2_MS if data.measured(m) is not None and data.networks[m].additive]
    rho, tau = rank_correlations([MOBILEFACENETS_TABLE2_MS[m] for m in have], [data.measured(m) for m in have])
    ort = [m for m in have if data.networks[m].ort_us is not None]
    rho_o, tau_o = rank_correlations([MOBILEFACENETS_TABLE2_MS[m] for m in ort], [data.networks[m].ort_us for m in ort])
    pred = [m for m in have if data.networks[m].predicted_us is not None]
    rho_p, tau_p = rank_correlations([MOBILEFACENETS_TABLE2_MS[m] for m in pred],
                                     [data.networks[m].predicted_us for m in pred])
    return Claim(
        "mobilefacenets_ranking", "The speed ranking of MobileFaceNets Table 2",
        "MobileFaceNets (CCBR 2018), Table 2 (Snapdragon 820, 4 threads, ncnn)",
        "\"our MobileFaceNets achieve significantly better accuracy with faster inference speed\" (MobileNetV1 "
        "60, ShuffleNet 27, MobileNetV2 49, MobileNetV2-GDConv 50, MobileFaceNet 24, 112x96 21, 96x96 18, -M 24, "
        "-S 23, ReLU 23, expansion x2 27 ms).",
        Expectation(1.0, f"Kendall tau >= 0.6 between the paper's ms and ours, over {MIN_RANKED} networks or more"),
        comps,
        figures={"networks ranked": len(have), "Spearman rho": rho, "Kendall tau": tau,
                 "Kendall tau, onnxruntime": tau_o, "Spearman rho, onnxruntime": rho_o,
                 "Kendall tau, predicted": tau_p, "Spearman rho, predicted": rho_p}, min_tau=0.6).judge()


def faster_than_mobilenetv2(data: ClaimsData) -> Claim:
    """MobileFaceNet about 2x faster than MobileNetV2 (24 vs 49 ms)."""
    return Claim(
        "faster_than_mobilenetv2", "MobileFaceNet 2x faster than MobileNetV2", "MobileFaceNets (CCBR 2018), Table 2",
        "MobileFaceNet 24 ms against MobileNetV2 49 ms (and MobileNetV2-GDConv 50 ms) on a Snapdragon 820.",
        Expectation.at_most(24 / 49, 0.10),
        [net_pair(data, "mobilefacenet", "mobilenetv2_face", paper=24 / 49),
         net_pair(data, "mobilefacenet", "mobilenetv2_gdconv_face", paper=24 / 50)]).judge()


def seesaw_at_two_thirds(data: ClaimsData) -> Claim:
    """SeesawFaceNets at 66% (69.7% for the mobi variant) of MobileFaceNet's MAdds: does latency follow?"""
    return Claim(
        "seesaw_at_two_thirds", "SeesawFaceNets at 66% of MobileFaceNet's MAdds", "SeesawFaceNets (2019), Tables 3-4",
        "\"SeesawFaceNets always performs better than MobileFaceNet with 66% of the MAdds operation\"; "
        "Seesaw-shuffleFaceNet(mobi) at \"69.7% (154M VS 221M MAdds)\".",
        Expectation.at_most(0.70, 0.10),
        [net_pair(data, "seesaw_share", "mobilefacenet"), net_pair(data, "seesaw_shuffle", "mobilefacenet"),
         net_pair(data, "seesaw_shuffle_mobi", "mobilefacenet")],
        notes=["The MobileFaceNet of the paper's comparison is its own 512-d implementation; the zoo's "
               "mobilefacenet is the 128-d original (the head differs by one small FC)."]).judge()


def dw_seesaw_cost(data: ClaimsData) -> Claim:
    """DW-SeesawFaceNets: deeper and wider Seesaw nets; do they cost no more than their MAdds say?"""
    comps = [net_pair(data, v, "seesaw_share") for v in ("dw_seesaw_v1", "dw_seesaw_v2")]
    bound = max((c.madds or 0) for c in comps) or 3.5
    return Claim(
        "dw_seesaw_cost", "DW-SeesawFaceNets cost what their MAdds say", "SeesawFaceNets (2019), Tables 5-6",
        "DW-SeesawFaceNet, a \"deeper and wider version of Seesaw-shuffleFaceNet\" (514M and 526M MAdds against "
        "146M).", Expectation.at_most(bound, 0.10), comps,
        notes=["The rule asks latency to grow no faster than MAdds (the largest MAdds ratio + 10%)."]).judge()


def embedding_heads(data: ClaimsData) -> Claim:
    """FR-MBConv Table 8 (S2FC vs FC and GDC) and MobileFaceNets' GDConv vs global average pooling."""
    comps = [net_pair(data, "frmbconv_7x7", "frmbconv_fc512", "S2FC / FC (frmbconv)", paper=1022 / 1030),
             net_pair(data, "frmbconv_7x7", "frmbconv_gdc128", "S2FC / GDC (frmbconv)", paper=1022 / 1030),
             net_pair(data, "mobilenetv2_gdconv_face", "mobilenetv2_face", "GDConv / GAP (MobileNetV2)",
                      paper=50 / 49)]
    return Claim(
        "embedding_heads", "Embedding heads: S2FC, FC, GDC; GDConv vs global average pooling",
        "FR-MBConv (ICCV-W 2019) Table 8; MobileFaceNets Table 2",
        "\"The FLOPs of network with our module [S2FC] is less than FC and GDC\" (1022 vs 1030 MFLOPs); "
        "MobileNetV2-GDConv 50 ms vs MobileNetV2 49 ms.", Expectation.costs_little(0.05), comps,
        notes=["The rule: a head costs at most 5% more than the one it is compared with."]).judge()


LFR_TRACK_FLOPS = 1e9  # the LFR challenge's small track, in its FLOPs (insightface's counter: about 2 x MAdds)


def madds_premise(data: ClaimsData) -> Claim:
    """The LFR budgets and the papers' premise: does MAdds order latency over the zoo?"""
    nets = [n for n in data.networks.values() if n.tvm_us is not None and n.additive]
    rho, tau = rank_correlations([n.madds for n in nets], [n.tvm_us for n in nets])
    ort = [n for n in nets if n.ort_us is not None]
    _, tau_o = rank_correlations([n.madds for n in ort], [n.ort_us for n in ort])
    pred = [n for n in nets if n.predicted_us is not None]
    _, tau_p = rank_correlations([n.madds for n in pred], [n.predicted_us for n in pred])
    fits = sorted(n.name for n in data.networks.values() if 2 * n.madds <= LFR_TRACK_FLOPS * 1.03)
    return Claim(
        "madds_premise", "FLOPs budgets: does MAdds order latency?", "Towards Flops-constrained Face Recognition "
        "(LFR challenge, ICCV-W 2019), Sec. 1", "\"The computational budged is 1Gflops and 30Gflops for the small "
        "and large tracks respectively.\" Every paper here ranks its networks by FLOPs or MAdds.",
        Expectation(1.0, f"Kendall tau >= 0.7 between MAdds and latency over the measured zoo ({MIN_RANKED} "
                         "networks or more)"), [],
        figures={"networks": len(nets), "Spearman rho": rho, "Kendall tau": tau, "Kendall tau, onnxruntime": tau_o,
                 "Kendall tau, predicted": tau_p, "fit the 1 GFLOPs track": len(fits)},
        notes=[f"Within the 1 GFLOPs track (2 x MAdds <= 1.03 GFLOPs, the FR-MBConv paper's 1022 M counted as "
               f"fitting): {', '.join(fits)}."], min_tau=0.7).judge()


CLAIMS: tuple[Callable[[ClaimsData], Claim], ...] = (
    dw7_vs_3x3, shuffle_vs_share, activations_and_se, mobilefacenets_ranking, faster_than_mobilenetv2,
    seesaw_at_two_thirds, dw_seesaw_cost, embedding_heads, madds_premise,
)

# The zoo networks the claims compare, in the order worth measuring them (pairs complete early).
CLAIM_NETWORKS = (
    "seesaw_share", "seesaw_shuffle", "mobilefacenet", "mobilefacenet_relu", "mobilenetv2_face",
    "mobilenetv2_gdconv_face", "frmbconv_7x7", "mbconv_7x7", "mbconv_3x3", "frmbconv_3x3", "frmbconv_se_pre",
    "frmbconv_fc512", "frmbconv_gdc128", "mbconv_5x5", "shufflenet_g3_face", "mobilenetv1_face",
    "mobilefacenet_112x96", "mobilefacenet_96x96", "mobilefacenet_m", "mobilefacenet_s", "mobilefacenet_exp2",
    "seesaw_shuffle_mobi", "dw_seesaw_v1", "dw_seesaw_v2",
)


def check_claims(data: ClaimsData) -> list[Claim]:
    """Every claim of :data:`CLAIMS` on ``data``."""
    return [f(data) for f in CLAIMS]
