"""Tiny real networks shared by the tests (exported by the TorchScript exporter)."""

from __future__ import annotations


def tiny_net(stem_in: int = 3, with_se: bool = False):
    """A tiny face-net-like module: conv stem + depthwise block with residual + pointwise + linear head."""
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(stem_in, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.PReLU(8))
            self.block = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8), nn.BatchNorm2d(8), nn.ReLU())
            self.pw = nn.Conv2d(8, 16, 1)
            self.head = nn.Linear(16 * 8 * 8, 10)

        def forward(self, x):
            y = self.stem(x)
            y = y + self.block(y)
            return self.head(self.pw(y).flatten(1))

    torch.manual_seed(0)
    return Tiny().eval()


def export_tiny(path, stem_in: int = 3):
    import torch

    m = tiny_net(stem_in)
    with torch.no_grad():
        torch.onnx.export(m, (torch.randn(1, stem_in, 16, 16),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["out"])
    return path
