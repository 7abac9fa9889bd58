"""Deployable artifacts: ``model.so`` + ``manifest.json`` + the ``model.onnx`` it was built from.

The manifest records where the binary came from and what it expects, and the
sha256 of ``model.so``; :func:`load_artifact` refuses a binary whose hash does
not match before anything loads it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
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

    Shapes are lists of ints (-1 for a dimension known only at run time);
    ``so_sha256`` is the hex digest of ``model.so``. ``outputs`` lists every
    output of ``main`` in order (``name``, ``shape``, ``dtype``; the ONNX
    graph's output names); ``output`` is the first one without its name, as
    manifests had it before ``outputs`` (an older manifest has no ``outputs``:
    :attr:`output_specs` stands in). ``linker`` says what linked ``model.so``
    (:meth:`hwface.targets.Linker.describe`; None in older manifests).
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
    outputs: list[dict[str, Any]] = field(default_factory=list)
    linker: str | None = None
    created_utc: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def output_specs(self) -> list[dict[str, Any]]:
        """Every output's ``name`` (None in older manifests), ``shape`` and ``dtype``, in order."""
        return self.outputs or [{"name": None, **self.output}]

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, directory: Path) -> "Manifest":
        path = directory / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ArtifactError(f"{directory} is not an artifact directory: no {MANIFEST_NAME}") from None
        except OSError as exc:
            raise ArtifactError(f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ArtifactError(f"{path} is malformed: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{path} is malformed: not JSON ({exc})") from None
        problem = manifest_problem(data)
        if problem:
            raise ArtifactError(f"{path} is malformed: {problem}")
        return cls(**data)


_STRINGS = ("hwface_version", "tvm_version", "target_name", "so_sha256", "onnx", "so")


def _tensor_problem(what: str, t: Any, named: bool) -> str | None:
    if not isinstance(t, dict):
        return f"{what} is not an object"
    if named and not isinstance(t.get("name"), (str, type(None))):
        return f"{what}.name is not a string"
    shape = t.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        return f"{what}.shape is not a list of integers"
    if not isinstance(t.get("dtype"), str):
        return f"{what}.dtype is not a string"
    return None


def manifest_problem(data: Any) -> str | None:
    """What is wrong with a manifest's parsed JSON (the first problem found), or None.

    Checks the fields a loader reads: they are present and known, have the
    right types, and ``so`` / ``onnx`` name files inside the artifact directory.
    """
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    required = [f.name for f in fields(Manifest) if f.default is MISSING and f.default_factory is MISSING]
    missing = [k for k in required if k not in data]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    unknown = sorted(set(data) - {f.name for f in fields(Manifest)})
    if unknown:
        return f"unknown field(s) {', '.join(unknown)} (made by a newer hwface?)"
    bad = [k for k in _STRINGS if k in data and not isinstance(data[k], str)]
    if bad:
        return f"field(s) {', '.join(bad)} must be strings"
    for k in ("so", "onnx"):
        if k in data and (not data[k] or Path(data[k]).name != data[k] or data[k] in (".", "..")):
            return f"{k} must be a file name inside the artifact directory, got {data[k]!r}"
    outputs = data.get("outputs", [])
    if not isinstance(outputs, list):
        return "outputs is not a list"
    checks = [("input", data["input"], True), ("output", data["output"], False)]
    checks += [(f"outputs[{i}]", t, True) for i, t in enumerate(outputs)]
    for what, t, named in checks:
        problem = _tensor_problem(what, t, named)
        if problem:
            return problem
    if not isinstance(data["input"].get("name"), str):
        return "input.name is not a string"
    return None


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


def _dims(tensor_type) -> list[int]:
    """Static dims as ints, -1 for a dim known only at run time (or all of them when only the rank is)."""
    from tvm import tirx

    shape = getattr(tensor_type, "shape", None)
    values = getattr(shape, "values", None)
    if values is None:
        return [-1] * max(int(getattr(tensor_type, "ndim", -1)), 0)
    return [int(d) if isinstance(d, tirx.IntImm) else -1 for d in values]


def output_specs(ret_type, names: list[str]) -> list[dict[str, Any]]:
    """``name``, ``shape`` and ``dtype`` of every output of a Relax ``main`` (a tensor or a tuple of tensors).

    Parameters
    ----------
    ret_type : tvm.relax.TensorType or tvm.ir.TupleType
        ``main``'s return type.
    names : list of str
        The ONNX graph's output names, in order (the importer keeps it).

    Raises
    ------
    HwfaceError
        An output that is not a tensor (a nested tuple, a shape, an object).
    """
    fields_ = list(ret_type.fields) if hasattr(ret_type, "fields") else [ret_type]
    specs = []
    for i, t in enumerate(fields_):
        name = names[i] if i < len(names) else f"output{i}"
        if not hasattr(t, "dtype") or hasattr(t, "fields"):
            raise HwfaceError(f"output {i} ({name}) of this model is not a tensor ({t}): "
                              "hwface deploys tensor outputs only")
        specs.append({"name": name, "shape": _dims(t), "dtype": str(t.dtype)})
    if not specs:
        raise HwfaceError("this model has no outputs")
    return specs


def numpy_outputs(value) -> tuple:
    """A VM ``main`` result (one tensor or a tuple of them, local or remote) as a tuple of numpy arrays."""
    if hasattr(value, "numpy"):
        return (value.numpy(),)
    return tuple(v for item in value for v in numpy_outputs(item))


def _manifest(spec, network, fused, so: Path, model: str | None, kernels: int, tuned: int, linker,
              tuning_db_hash: str | None) -> Manifest:
    """The manifest of a freshly linked ``model.so``."""
    import tvm

    import hwface

    inp = network.input
    outputs = output_specs(fused["main"].ret_ty, [o.name for o in network.onnx_model.graph.output])
    return Manifest(
        hwface_version=hwface.__version__,
        tvm_version=tvm.__version__,
        target_name=spec.name,
        target=spec.target,
        host=spec.host,
        input={"name": inp.name, "shape": list(inp.shape), "dtype": inp.dtype},
        output={k: v for k, v in outputs[0].items() if k != "name"},
        outputs=outputs,
        preprocessing=ZOO_PREPROCESSING if model is not None else None,
        tuning_db_hash=tuning_db_hash,
        so_sha256=sha256_file(so),
        model=model,
        kernels=kernels,
        tuned_kernels=tuned,
        linker=linker.describe(),
    )


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
    from hwface.compile.build import build, export_so, kernels_left
    from hwface.compile.network import fused_module, load_network
    from hwface.compile.slice_views import uses_views
    from hwface.targets import load_target

    if (model is None) == (onnx_path is None):
        raise HwfaceError("give exactly one of a zoo model or an ONNX file")
    say = progress or (lambda msg: None)
    spec = load_target(target)
    linker = spec.linker()  # fail before any work when the cross compiler is missing
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(f"cannot create the artifact directory {out}: {exc.strerror or exc}") from None
    say(f"exporting {model} to ONNX" if model else f"cleaning {onnx_path} (static shapes, folded constants)")
    network = load_network(model, onnx_path, input_size, input_shape, onnx_out=out / ONNX_NAME)
    say("importing into TVM Relax and fusing kernels")
    fused = fused_module(network, spec)
    kernels = kernels_left(fused, uses_views(spec.tvm_target()))
    tuned = 0
    if database is not None:
        from hwface.compile.records import count_tuned_kernels

        tuned, total = count_tuned_kernels(fused, spec, database)
        say(f"{tuned} of {total} distinct kernels have tuning records; {total - tuned} keep TVM's default schedule")
    say(f"building {len(kernels)} kernels for {spec.name}")
    executable = build(fused, spec, database=database, progress=say)
    so = export_so(executable, out / SO_NAME, spec)
    manifest = _manifest(spec, network, fused, so, model, len(kernels), tuned, linker,
                         tuning_db_hash if database is not None else None)
    manifest.write(out)
    return Artifact(out, manifest)

