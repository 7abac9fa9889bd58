"""ONNX -> TVM Relax -> fused kernels -> built, linked ``.so`` artifacts (+ manifest)."""

from hwface.compile.artifact import Artifact, Manifest, compile_artifact, load_artifact
from hwface.compile.relax_import import import_onnx
from hwface.compile.pipeline import fuse

__all__ = ["Artifact", "Manifest", "compile_artifact", "fuse", "import_onnx", "load_artifact"]
