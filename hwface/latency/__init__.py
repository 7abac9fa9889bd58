"""Latency data: the canonical layer key, the kernels of a fused network, the SQLite store, the sampler."""

from hwface.latency.key import LayerKey, layer_key

__all__ = ["LayerKey", "layer_key"]
