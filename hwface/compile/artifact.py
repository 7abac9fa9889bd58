"""Deployable artifacts: ``model.so`` + ``manifest.json`` + the ``model.onnx`` it was built from.

The manifest records where the binary came from and what it expects, and the
sha256 of ``model.so``; :func:`load_artifact` refuses a binary whose hash does
not match before anything loads it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwface.errors import HwfaceError

SO_NAME = "model.so"
ONNX_NAME = "model.onnx"
MANIFEST_NAME = "manifest.json"
ZOO_PREPROCESSING = "(x - 127.5) / 128, RGB, NCHW float32"


class ArtifactError(HwfaceError):
    """A missing, malformed or tampered artifact directory."""


@dataclass
class Manifest:
    """What an artifact is, where it came from and what it expects.

    Shapes are lists of ints; ``so_sha256`` is the hex digest of ``model.so``.
    """

    hwface_version: str
    tvm_version: str
    target_name: str
    target: dict[str, Any]
    host: dict[str, Any] | None
    input: dict[str, Any]
    output: dict[str, Any]
    preprocessing: str | None
    tuning_db_hash: str | None
    so_sha256: str
    model: str | None
    onnx: str = ONNX_NAME
    so: str = SO_NAME
    kernels: int = 0
    tuned_kernels: int = 0
    created_utc: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, directory: Path) -> "Manifest":
        path = directory / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except FileNotFoundError:
            raise ArtifactError(f"{directory} is not an artifact directory: no {MANIFEST_NAME}") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise ArtifactError(f"{path} is malformed: {exc}") from None


@dataclass(frozen=True)
class Artifact:
    """A compiled artifact directory and its manifest."""

    directory: Path
    manifest: Manifest

    @property
    def so_path(self) -> Path:
        return self.directory / self.manifest.so

    @property
    def onnx_path(self) -> Path:
        return self.directory / self.manifest.onnx


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_artifact(directory: str | Path) -> Artifact:
    """Read an artifact directory and check ``model.so`` against the manifest's sha256.

    Raises
    ------
    ArtifactError
        Missing files, malformed manifest, or a ``.so`` whose hash does not match.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"no artifact directory at {directory}")
    manifest = Manifest.read(directory)
    so = directory / manifest.so
    if not so.is_file():
        raise ArtifactError(f"{directory}: {manifest.so} is missing")
    digest = sha256_file(so)
    if digest != manifest.so_sha256:
        raise ArtifactError(
            f"{so} does not match its manifest (sha256 {digest[:12]}..., expected {manifest.so_sha256[:12]}...): "
            "refusing to load a modified binary"
        )
    return Artifact(directory, manifest)


def compile_artifact(
    out_dir: str | Path,
    target: str = "host",
    model: str | None = None,
    onnx_path: str | Path | None = None,
    input_size: tuple[int, int] | None = None,
    input_shape: tuple[int, ...] | None = None,
    database=None,
    tuning_db_hash: str | None = None,
    progress=None,
) -> Artifact:
    """Compile a zoo network or an ONNX file for a target into an artifact directory.

    Parameters
    ----------
    out_dir : path
        Created if missing; ``model.so``, ``model.onnx`` and ``manifest.json`` go there.
    target : str
        Target name (``targets/<name>.toml``) or path.
    model : str, optional
        Zoo name (exclusive with ``onnx_path``).
    onnx_path : path, optional
        ONNX file made elsewhere; made static and folded before import.
    input_size : (int, int), optional
        Zoo input (H, W) in pixels.
    input_shape : tuple of int, optional
        Full input shape for an ONNX file (replaces dynamic dims).
    database : meta_schedule Database, optional
        Tuning records to apply.
    tuning_db_hash : str, optional
        Recorded in the manifest with ``database``.
    progress : callable, optional
        ``progress(message)`` called at each stage.
    """
    import tvm

    import hwface
    from hwface.compile.build import build, export_so, kernels_left
    from hwface.compile.network import fused_module, load_network
    from hwface.compile.slice_views import uses_views
    from hwface.targets import load_target

    if (model is None) == (onnx_path is None):
        raise HwfaceError("give exactly one of a zoo model or an ONNX file")
    say = progress or (lambda msg: None)
    spec = load_target(target)
    spec.linker()  # fail before any work when the cross compiler is missing
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say(f"exporting {model} to ONNX" if model else f"cleaning {onnx_path} (static shapes, folded constants)")
    network = load_network(model, onnx_path, input_size, input_shape, onnx_out=out / ONNX_NAME)
    inp = network.input
    say("importing into TVM Relax and fusing kernels")
    fused = fused_module(network, spec)
    kernels = kernels_left(fused, uses_views(spec.tvm_target()))
    tuned = 0
    if database is not None:
        from hwface.tune.logs import count_tuned_kernels

        tuned, total = count_tuned_kernels(fused, spec, database)
        say(f"{tuned} of {total} distinct kernels have tuning records; {total - tuned} keep TVM's default schedule")
    say(f"building {len(kernels)} kernels for {spec.name}")
    executable = build(fused, spec, database=database, progress=say)
    so = export_so(executable, out / SO_NAME, spec)
    ret = fused["main"].ret_ty
    manifest = Manifest(
        hwface_version=hwface.__version__,
        tvm_version=tvm.__version__,
        target_name=spec.name,
        target=spec.target,
        host=spec.host,
        input={"name": inp.name, "shape": list(inp.shape), "dtype": inp.dtype},
        output={"shape": [int(d) for d in ret.shape], "dtype": str(ret.dtype)},
        preprocessing=ZOO_PREPROCESSING if model is not None else None,
        tuning_db_hash=tuning_db_hash if database is not None else None,
        so_sha256=sha256_file(so),
        model=model,
        kernels=len(kernels),
        tuned_kernels=tuned,
    )
    manifest.write(out)
    return Artifact(out, manifest)

