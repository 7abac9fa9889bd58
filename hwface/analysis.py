"""Static analysis of zoo networks: parameters, MAdds, size and a per-layer table.

MAdds are counted as the papers count them (MobileNetV2's convention, which
MobileFaceNets, SeesawFaceNets, FR-MBConv and the LFR challenge follow): one
multiply-add per weight use in convolution and fully connected layers, nothing
for BN, activations, pooling or element-wise ops. Parameters are every
parameter of the PyTorch module (BatchNorm and PReLU included).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from hwface.models.registry import ModelInfo, check_input_size, create_model, get_model_info

BYTES_PER_PARAM_FP32 = 4


@dataclass(frozen=True)
class LayerRow:
    """One leaf layer of a network as seen in a forward pass.

    Shapes are NCHW (or NC for linear layers); ``madds`` are multiply-adds.
    """

    name: str
    op: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel: tuple[int, int] | None
    stride: tuple[int, int] | None
    groups: int | None
    params: int
    madds: int


@dataclass(frozen=True)
class ModelSummary:
    """Whole-network figures next to the paper's.

    ``size_mb`` is the fp32 weight size in MB (10**6 bytes).
    """

    name: str
    paper: str
    input_size: tuple[int, int]
    embedding_dim: int
    params: int
    madds: int
    size_mb: float
    paper_params: float | None
    paper_madds: float | None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d


def _op_kind(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        k = m.kernel_size
        if m.groups == m.in_channels == m.out_channels and m.groups > 1:
            return "dwconv"
        if k == (1, 1):
            return "gpwconv" if m.groups > 1 else "pwconv"
        return "gconv" if m.groups > 1 else "conv"
    return type(m).__name__.lower()


def _madds(m: nn.Module, out: torch.Tensor) -> int:
    if isinstance(m, nn.Conv2d):
        kh, kw = m.kernel_size
        return int(out.numel() // out.shape[0] * (m.in_channels // m.groups) * kh * kw)
    if isinstance(m, nn.Linear):
        return int(out.numel() // out.shape[0] * m.in_features)
    return 0


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def layer_table(model: nn.Module, input_size: tuple[int, int]) -> list[LayerRow]:
    """Per-layer table of a network for one 1x3xHxW input.

    Leaf modules and modules holding their own parameters (e.g. a custom block
    with a weight tensor) each give one row, in execution order; a module called
    twice gives two rows.
    """
    rows: list[LayerRow] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = []

    def hook(m: nn.Module, inputs, out) -> None:
        x = inputs[0] if inputs else None
        if not isinstance(out, torch.Tensor):
            return
        is_conv = isinstance(m, nn.Conv2d)
        own = sum(p.numel() for p in m.parameters(recurse=False))
        rows.append(
            LayerRow(
                name=names[m],
                op=_op_kind(m),
                input_shape=tuple(x.shape) if isinstance(x, torch.Tensor) else (),
                output_shape=tuple(out.shape),
                kernel=_pair(m.kernel_size) if is_conv or isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) else None,
                stride=_pair(m.stride) if is_conv or isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) else None,
                groups=m.groups if is_conv else None,
                params=own,
                madds=_madds(m, out),
            )
        )

    for m in model.modules():
        leaf = not any(True for _ in m.children())
        if leaf or any(True for _ in m.parameters(recurse=False)):
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, *input_size))
    finally:
        for h in hooks:
            h.remove()
    return rows


def count_params(model: nn.Module) -> int:
    """Number of parameters (all of them, BN and PReLU included)."""
    return sum(p.numel() for p in model.parameters())


def summarize(name: str, input_size: tuple[int, int] | None = None) -> ModelSummary:
    """Parameters, MAdds and fp32 size of a zoo network, beside the paper's figures."""
    info: ModelInfo = get_model_info(name)
    size = check_input_size(info, input_size or info.input_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small forward pass: OpenMP's spinning threads cost more than they save
    try:
        model = create_model(name, input_size=size, calibrate=False)  # counts do not depend on BatchNorm statistics
        rows = layer_table(model, size)
    finally:
        torch.set_num_threads(threads)
    params = count_params(model)
    return ModelSummary(
        name=name,
        paper=info.paper,
        input_size=size,
        embedding_dim=info.embedding_dim,
        params=params,
        madds=sum(r.madds for r in rows),
        size_mb=round(params * BYTES_PER_PARAM_FP32 / 1e6, 3),
        paper_params=info.paper_params,
        paper_madds=info.paper_madds,
    )
