"""The claims report's charts (matplotlib, PNG): the zoo's latency vs MAdds, each claim's ratios, kernel stacks."""

from __future__ import annotations

from pathlib import Path

from hwface.claims.catalog import Claim
from hwface.claims.data import ClaimsData

RATIO_SERIES = (("paper", "paper"), ("madds", "MAdds"), ("measured", "TVM tuned"), ("onnxruntime", "onnxruntime"),
                ("predicted", "predicted"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def zoo_scatter(data: ClaimsData, path: str | Path) -> Path | None:
    """Latency (ms, log) vs MAdds (M, log) of every measured zoo network, TVM and onnxruntime, labelled."""
    nets = [n for n in data.networks.values() if n.tvm_us is not None]
    if not nets:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6.5))
    ax.scatter([n.madds / 1e6 for n in nets], [n.tvm_us / 1e3 for n in nets], label=f"TVM tuned (K = {data.budget})",
               color="tab:blue", zorder=3)
    ort = [n for n in nets if n.ort_us is not None]
    ax.scatter([n.madds / 1e6 for n in ort], [n.ort_us / 1e3 for n in ort], label="onnxruntime", marker="s",
               facecolors="none", edgecolors="tab:orange", zorder=3)
    for n in ort:  # a network's two engines, joined
        ax.plot([n.madds / 1e6] * 2, [n.tvm_us / 1e3, n.ort_us / 1e3], color="tab:gray", linewidth=0.6, alpha=0.5,
                zorder=2)
    ax.set(xscale="log", yscale="log", xlabel="MAdds (millions)", ylabel="latency (ms)",
           title=f"The zoo on {data.device}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _labels(ax, [(n.name, n.madds / 1e6, n.tvm_us / 1e3) for n in nets])
    return _save(fig, path)


def _labels(ax, points: list[tuple[str, float, float]]) -> None:
    """Name each point, labels moved apart (adjustText) with a thin line back to their point."""
    from adjustText import adjust_text

    texts = [ax.text(x, y, name, fontsize=7) for name, x, y in points]
    adjust_text(texts, x=[x for _, x, _ in points], y=[y for _, _, y in points], ax=ax,
                arrowprops={"arrowstyle": "-", "color": "tab:gray", "linewidth": 0.5})


def ratio_bars(claim: Claim, path: str | Path) -> Path | None:
    """Grouped bars of each comparison's ratios (paper, MAdds, TVM, onnxruntime, predicted), the rule's bound."""
    comps = claim.comparisons
    if not comps or all(c.measured is None for c in comps):
        return None
    plt = _pyplot()
    width = 0.8 / len(RATIO_SERIES)
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(comps) + 3), 4.8))
    for i, (attr, label) in enumerate(RATIO_SERIES):
        xs = [j + (i - 2) * width for j in range(len(comps))]
        ax.bar(xs, [getattr(c, attr) or 0 for c in comps], width, label=label)
    ax.axhline(1.0, color="black", linewidth=0.8)
    if claim.expect.bound != 1.0:
        ax.axhline(claim.expect.bound, color="tab:red", linestyle="--", linewidth=0.8, label="the rule's bound")
    ax.set_xticks(range(len(comps)), [c.label for c in comps], rotation=30, ha="right", fontsize=7)
    ax.set(ylabel="ratio a / b", title=claim.title)
    ax.legend(fontsize=7)
    return _save(fig, path)


def kernel_stacks(claim: Claim, path: str | Path) -> Path | None:
    """Per stage shape: one DW7x7 beside the stack of three DW3x3 calls that replaces it (us)."""
    bars = [b for b in claim.kernel_bars if b["dw7x7_us"] is not None and b["dw3x3_us"] is not None]
    if not bars:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = range(len(bars))
    ax.bar([x - 0.2 for x in xs], [b["dw7x7_us"] for b in bars], 0.4, label="DW7x7", color="tab:blue")
    for i in range(3):
        ax.bar([x + 0.2 for x in xs], [b["dw3x3_us"] for b in bars], 0.4, bottom=[i * b["dw3x3_us"] for b in bars],
               color="tab:orange", edgecolor="white", label="DW3x3 (x3, stacked)" if i == 0 else None)
    ax.set_xticks(list(xs), [b["label"] for b in bars])
    ax.set(ylabel="latency (us)", xlabel="stage input", title="One depthwise 7x7 vs three 3x3s, per stage shape")
    ax.legend()
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
    return path
