"""The model registry: one entry per zoo network, driving the CLI choices and the tests.

A model is an architecture table (in its family module) plus one function
registered here with :func:`register_model`, which also records what the paper
says about it (parameters, MAdds, input size) so that analysis, docs and tests
can compare the zoo with the paper without extra code.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from hwface.errors import HwfaceError

if TYPE_CHECKING:  # torch is imported lazily so that `hwface --help` stays instant
    from torch import nn


class UnknownModelError(HwfaceError, ValueError):
    """Raised for a model name that is not in the registry."""


class InputSizeError(HwfaceError, ValueError):
    """Raised for an input size that a network cannot take."""


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one zoo network.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"mobilefacenet"``.
    family : str
        Family module name, e.g. ``"mobilefacenet"``, ``"seesaw"``.
    paper : str
        Short citation with the table the network comes from.
    input_size : tuple of int
        Default input (H, W) in pixels.
    embedding_dim : int
        Length of the output embedding.
    total_stride : int
        Downsampling factor between input and last feature map; an input size
        must be a multiple of it.
    paper_params : float or None
        Parameter count the paper gives, or None where it gives none.
    paper_madds : float or None
        Multiply-adds the paper gives, or None.
    tolerance : float
        Relative deviation from ``paper_params``/``paper_madds`` accepted by the
        tests; anything above 0.05 must be explained in ``notes``.
    notes : str
        Reading choices where the paper is ambiguous, and the remaining deviation.
    builder : callable
        ``builder(input_size=(H, W), **kw) -> nn.Module``.
    """

    name: str
    family: str
    paper: str
    input_size: tuple[int, int]
    embedding_dim: int
    total_stride: int
    paper_params: float | None
    paper_madds: float | None
    tolerance: float
    notes: str
    builder: Callable[..., "nn.Module"] = field(repr=False, compare=False)


_REGISTRY: dict[str, ModelInfo] = {}
_FAMILIES = (
    "hwface.models.mobilefacenet",
    "hwface.models.baselines",
    "hwface.models.seesaw",
    "hwface.models.frmbconv",
    "hwface.models.iresnet",
)
_loaded = False


def register_model(
    name: str,
    *,
    paper: str,
    input_size: tuple[int, int] = (112, 112),
    embedding_dim: int = 128,
    total_stride: int = 16,
    paper_params: float | None = None,
    paper_madds: float | None = None,
    tolerance: float = 0.05,
    notes: str = "",
) -> Callable[[Callable[..., "nn.Module"]], Callable[..., "nn.Module"]]:
    """Register a model builder under ``name`` (decorator).

    The decorated function takes ``input_size=(H, W)`` plus keyword options and
    returns an ``nn.Module`` mapping a 1x3xHxW crop to its embedding.
    """

    def decorate(fn: Callable[..., "nn.Module"]) -> Callable[..., "nn.Module"]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelInfo(
            name=name,
            family=fn.__module__.rsplit(".", 1)[-1],
            paper=paper,
            input_size=tuple(input_size),
            embedding_dim=embedding_dim,
            total_stride=total_stride,
            paper_params=paper_params,
            paper_madds=paper_madds,
            tolerance=tolerance,
            notes=notes.strip(),
            builder=fn,
        )
        return fn

    return decorate


def _load_families() -> None:
    global _loaded
    if _loaded:
        return
    import importlib

    for module in _FAMILIES:
        importlib.import_module(module)
    _loaded = True


def list_models() -> list[str]:
    """Names of every registered network, sorted."""
    _load_families()
    return sorted(_REGISTRY)


def get_model_info(name: str) -> ModelInfo:
    """Registry entry for ``name``; raises :class:`UnknownModelError` with suggestions."""
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `hwface models`"
        raise UnknownModelError(f"unknown model {name!r}{hint}") from None


def check_input_size(info: ModelInfo, input_size: tuple[int, int]) -> tuple[int, int]:
    """Validate an (H, W) input size for a network; returns it as a tuple of ints."""
    if len(input_size) != 2:
        raise InputSizeError(f"input size must be H W, got {input_size!r}")
    h, w = (int(v) for v in input_size)
    s = info.total_stride
    if h < s or w < s or h % s or w % s:
        raise InputSizeError(
            f"{info.name} cannot take a {h}x{w} input: height and width must be "
            f"positive multiples of its total stride {s} (default {info.input_size[0]}x{info.input_size[1]})"
        )
    return h, w


def create_model(
    name: str, input_size: tuple[int, int] | None = None, seed: int = 0, calibrate: bool = True, **kwargs
) -> "nn.Module":
    """Build a zoo network in eval mode, with reproducible weights.

    The zoo carries no trained weights (none can be downloaded here), so every
    network gets deterministic random weights from ``seed`` and, with
    ``calibrate``, BatchNorm statistics measured on one fixed random batch: the
    activations then keep a realistic scale through the whole depth, so parity
    checks between PyTorch, onnxruntime and TVM compare non-trivial embeddings.

    Parameters
    ----------
    name : str
        Registry name (see :func:`list_models`).
    input_size : (int, int), optional
        Input (H, W) in pixels; defaults to the paper's. Networks with a global
        depthwise head size its kernel to the last feature map.
    seed : int
        Seed of the weights and of the calibration batch.
    calibrate : bool
        Set BatchNorm running statistics from one forward pass (batch of 4).
    **kwargs
        Passed to the family builder.
    """
    import torch

    info = get_model_info(name)
    size = check_input_size(info, input_size or info.input_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = info.builder(input_size=size, **kwargs)
        if calibrate:
            calibrate_batchnorm(model, size)
    model.eval()
    return model


def calibrate_batchnorm(model: "nn.Module", size: tuple[int, int], batch: int = 4) -> None:
    import torch
    from torch import nn

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration pass
    model.train()
    with torch.no_grad():
        model(torch.randn(batch, 3, *size))
    for m in norms:
        m.momentum = 0.1
