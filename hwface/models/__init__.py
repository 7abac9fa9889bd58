"""The zoo of face-recognition networks from the papers in ../shared/seeds."""

from hwface.models.registry import (
    InputSizeError,
    ModelInfo,
    UnknownModelError,
    create_model,
    get_model_info,
    list_models,
    register_model,
)

__all__ = [
    "InputSizeError",
    "ModelInfo",
    "UnknownModelError",
    "create_model",
    "get_model_info",
    "list_models",
    "register_model",
]
