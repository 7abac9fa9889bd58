"""Run an artifact on this machine: output and latency."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwface.compile.artifact import Artifact, load_artifact, numpy_outputs
from hwface.compile.elf import elf_machine, host_machine
from hwface.errors import HwfaceError
from hwface.measure.threads import use_all_cores
from hwface.measure.timing import LatencyStats, time_vm_main


@dataclass(frozen=True)
class RunResult:
    """Outputs of one run (in the manifest's order) and the latency of repeated runs (None when not timed)."""

    outputs: tuple[np.ndarray, ...]
    latency: LatencyStats | None
    device: str
    emulated: bool = False

    @property
    def output(self) -> np.ndarray:
        """The first output (the embedding of a zoo network)."""
        return self.outputs[0]


def load_input(artifact: Artifact, path: str | Path | None, seed: int = 0) -> np.ndarray:
    """The input to feed: a ``.npy`` file checked against the manifest, or a reproducible random one."""
    from hwface.export import example_input

    shape = tuple(artifact.manifest.input["shape"])
    dtype = artifact.manifest.input["dtype"]
    if path is None:
        return example_input(shape, seed).astype(dtype)
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise HwfaceError(f"input {path} is not a .npy file (numpy.save writes one)")
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise HwfaceError(f"cannot read input {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(x, np.ndarray):
        raise HwfaceError(f"input {path} holds no array")
    if tuple(x.shape) != shape:
        raise HwfaceError(f"input {path} has shape {x.shape}, the artifact expects {shape}")
    return x.astype(dtype)


def output_summary(y: np.ndarray, name: str | None = None) -> dict:
    """Name, shape, norm and first values of an output, for printing."""
    flat = y.reshape(-1)
    if flat.size == 0:
        return {"name": name, "shape": list(y.shape), "l2_norm": 0.0, "min": None, "max": None, "first": []}
    return {
        "name": name,
        "shape": list(y.shape),
        "l2_norm": float(np.linalg.norm(flat)),
        "min": float(flat.min()),
        "max": float(flat.max()),
        "first": [round(float(v), 6) for v in flat[:5]],
    }


def run_local(artifact_dir: str | Path, input_path: str | Path | None = None, timed: bool = True) -> RunResult:
    """Load an artifact on this machine (after the sha256 check), run it, and time it on every usable core.

    Raises
    ------
    HwfaceError
        A tampered or foreign-architecture ``.so``, or a bad input.
    """
    import tvm
    from tvm import relax

    artifact = load_artifact(artifact_dir)
    arch = elf_machine(artifact.so_path)
    if arch != host_machine():
        raise HwfaceError(
            f"{artifact.so_path} is built for {arch} ({artifact.manifest.target_name}); this machine is "
            f"{host_machine()}: run it on its device with --tracker HOST:PORT --key KEY"
        )
    x = load_input(artifact, input_path)
    use_all_cores()
    dev = tvm.cpu()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(artifact.so_path)), dev)
    arg = tvm.runtime.tensor(x, dev)
    outputs = numpy_outputs(vm["main"](arg))
    latency = time_vm_main(vm, dev, [arg]) if timed else None
    return RunResult(outputs=outputs, latency=latency, device=f"local {host_machine()}")
