"""The drift guard: every measuring batch is bracketed by a fixed reference, and redone when it moved.

A shared machine changes speed for minutes at a time (up to 2x here), and the
change hits whole-network runs harder than hot kernel loops. So each batch
(a sampler batch, a network's kernels, a network end to end) is timed between
two timings of a fixed *reference*: one hot kernel (a pointwise convolution,
timed alone in a loop) and one whole small network (five kernels, through the
Relax VM). When any of the four reference timings is more than ``tolerance``
away from the running median of that reference on that device, the batch is
measured again after a rest; after ``max_attempts`` the last attempt is kept and
flagged ``drifted``. When the device's server runs in this process tree (the
embedded host device), a bracket during which other processes took more than
``max_foreign_cores`` of the machine's CPUs is measured again the same way
(:mod:`hwface.measure.host_load`: a load that comes and goes between the
references slips past them). Every row keeps the reference timings it was taken
with and that load (:meth:`Bracket.to_dict`).

The reference is built once per run with TVM's default schedules for the
measuring target, so its timings do not depend on any tuning records.
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from hwface.measure.host_load import FOREIGN_CORES, HostLoad, cpu_sample, load_between, serves_here
from hwface.measure.timing import LatencyStats

T = TypeVar("T")
TOLERANCE = 0.05
MAX_ATTEMPTS = 4
WINDOW = 25
RESTS_S = (2.0, 10.0, 30.0)
REFERENCE_KERNEL = "reference_pwconv"


@dataclass(frozen=True)
class Reference:
    """One timing of the reference: hot kernel and small network, median microseconds."""

    kernel_us: float
    network_us: float


@dataclass(frozen=True)
class Bracket:
    """The references a batch was measured between, the medians it was held to, and how it went."""

    before: Reference
    after: Reference
    kernel_median_us: float
    network_median_us: float
    attempts: int
    drifted: bool  # kept after the last attempt although ``why`` still held
    load: HostLoad | None = None  # foreign and stolen cores during the bracket (a device of this process tree)
    why: str = ""  # what the last attempt failed ('' when it stood)

    def to_dict(self) -> dict[str, Any]:
        """What a stored row keeps (``reference`` column)."""
        out = {"kernel_us_before": self.before.kernel_us, "kernel_us_after": self.after.kernel_us,
               "network_us_before": self.before.network_us, "network_us_after": self.after.network_us,
               "kernel_median_us": self.kernel_median_us, "network_median_us": self.network_median_us,
               "attempts": self.attempts, "drifted": self.drifted}
        if self.load is not None:
            out.update(foreign_cores=round(self.load.foreign_cores, 4), steal_cores=round(self.load.steal_cores, 4))
        if self.drifted:
            out["why"] = self.why
        return out


def deviation(ref: Reference, kernel_median_us: float, network_median_us: float) -> float:
    """Largest relative distance of a reference timing from its running medians."""
    return max(abs(ref.kernel_us / kernel_median_us - 1.0), abs(ref.network_us / network_median_us - 1.0))


@dataclass
class _History:
    kernel: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    network: deque = field(default_factory=lambda: deque(maxlen=WINDOW))

    def add(self, ref: Reference) -> None:
        self.kernel.append(ref.kernel_us)
        self.network.append(ref.network_us)

    def medians(self) -> tuple[float, float]:
        return float(np.median(self.kernel)), float(np.median(self.network))


def reference_onnx():
    """The reference network: conv 3x3 + ReLU, depthwise 3x3 + ReLU, pointwise 32 -> 64, global pool, FC (float32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = []

    def w(name: str, *shape: int) -> str:
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype("float32"), name))
        return name

    nodes = [
        helper.make_node("Conv", ["x", w("w1", 32, 16, 3, 3), w("b1", 32)], ["c1"], name="/conv/Conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/conv/Relu"),
        helper.make_node("Conv", ["r1", w("w2", 32, 1, 3, 3), w("b2", 32)], ["c2"], name="/dw/Conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=32),
        helper.make_node("Relu", ["c2"], ["r2"], name="/dw/Relu"),
        helper.make_node("Conv", ["r2", w("w3", 64, 32, 1, 1), w("b3", 64)], ["c3"], name="/pw/Conv",
                         kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["c3"], ["g"], name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["f"], name="/pool/Flatten"),
        helper.make_node("Gemm", ["f", w("w4", 128, 64), w("b4", 128)], ["y"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(nodes, "drift_reference",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@dataclass(frozen=True)
class ReferenceBuild:
    """The reference compiled for a target: a kernel library (one pointwise conv) and the network's artifact."""

    kernel_so: Path
    kernel_shapes: tuple[tuple[int, ...], ...]
    kernel_dtypes: tuple[str, ...]
    network_so: Path
    input_shape: tuple[int, ...]


def build_reference(spec, work: str | Path | None = None) -> ReferenceBuild:
    """Compile the reference for ``spec`` (TVM's default schedules), in ``work`` (a temporary folder by default)."""
    from hwface.compile.build import build, export_so
    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.measure.kernel_timing import build_kernel_library, primfuncs

    work = Path(work or tempfile.mkdtemp(prefix="hwface-drift-"))
    work.mkdir(parents=True, exist_ok=True)
    fused = fuse(import_onnx(reference_onnx()), spec.tvm_target())
    funcs = primfuncs(fused)
    name = next(n for n in funcs if n.startswith("fused_conv2d") and "relu" not in n)  # the pointwise 32 -> 64
    func = funcs[name]
    shapes, dtypes = _call_signature(fused, name)
    kernel_so = build_kernel_library({REFERENCE_KERNEL: func}, spec, work / "reference_kernel.so")
    network_so = export_so(build(fused, spec), work / "reference_network.so", spec)
    return ReferenceBuild(kernel_so, shapes, dtypes, network_so, (1, 16, 28, 28))


def _call_signature(fused, kernel: str) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    """Argument shapes and dtypes (inputs, then the output) of ``main``'s call of ``kernel``."""
    from tvm import relax

    for block in fused["main"].body.blocks:
        for b in block.bindings:
            v = b.value
            if isinstance(v, relax.Call) and getattr(v.op, "name", "") == "relax.call_tir" \
                    and v.args[0].name_hint == kernel:
                tys = [a.value if hasattr(a, "value") and hasattr(a.value, "numpy") else a.ty for a in v.args[1]]
                tys.append(v.ty_args[0])
                return (tuple(tuple(int(d) for d in t.shape) for t in tys), tuple(str(t.dtype) for t in tys))
    raise LookupError(kernel)


class _Loaded:
    """The reference loaded in one RPC session: two timers."""

    def __init__(self, session, ref: ReferenceBuild, repeat: int, min_repeat_ms: float):
        import tvm
        from tvm import relax

        sess = session.sess
        for so in (ref.kernel_so, ref.network_so):
            sess.upload(str(so), so.name)
        dev = sess.cpu()
        rng = np.random.default_rng(0)
        lib = sess.load_module(ref.kernel_so.name)
        args = [tvm.runtime.tensor(rng.uniform(-1, 1, size=s).astype(d), dev)
                for s, d in zip(ref.kernel_shapes, ref.kernel_dtypes)]
        vm = relax.VirtualMachine(sess.load_module(ref.network_so.name), dev)
        x = tvm.runtime.tensor(rng.uniform(-1, 1, size=ref.input_shape).astype("float32"), dev)
        opts = dict(number=1, repeat=repeat, min_repeat_ms=int(min_repeat_ms), cooldown_interval_ms=0)
        lib.get_function(REFERENCE_KERNEL)(*args)
        vm["main"](x)
        kernel_timer = lib.time_evaluator(REFERENCE_KERNEL, dev, **opts)
        network_timer = vm.time_evaluator("main", dev, **opts)
        self.time_kernel = lambda: LatencyStats.from_seconds(kernel_timer(*args).results).median_us
        self.time_network = lambda: LatencyStats.from_seconds(network_timer(x).results).median_us
        self.sess = sess


class DriftGuard:
    """Brackets measuring batches with the reference and redoes those it moved (see the module docstring).

    Parameters
    ----------
    spec : TargetSpec
        The measuring target (the reference is compiled for it).
    tolerance : float
        Largest relative move of a reference from its running median (0.05 = 5%).
    max_attempts : int
        Measurements of one batch before the last is kept, flagged ``drifted``.
    rests_s : tuple of float
        Pause before each re-measurement, seconds (the last repeats).
    repeat, min_repeat_ms
        ``time_evaluator`` samples of each reference timing and their minimum length (ms).
    reference : ReferenceBuild, optional
        A prebuilt reference (default: built now).
    max_foreign_cores : float or None, optional
        Cores other processes may take during a bracket before it is measured
        again, on a device whose server runs in this process tree (host targets
        only: another machine's load is not this one's); None: not watched.
    """

    def __init__(self, spec, tolerance: float = TOLERANCE, max_attempts: int = MAX_ATTEMPTS,
                 rests_s: tuple[float, ...] = RESTS_S, repeat: int = 5, min_repeat_ms: float = 20,
                 reference: ReferenceBuild | None = None, max_foreign_cores: float | None = FOREIGN_CORES):
        self.tolerance = tolerance
        self.max_foreign_cores = max_foreign_cores if spec.is_host else None
        self.max_attempts = max(1, max_attempts)
        self.rests_s = rests_s or (0.0,)
        self.repeat, self.min_repeat_ms = repeat, min_repeat_ms
        self.reference = reference or build_reference(spec)
        self.batches = 0
        self.redone = 0
        self.drifted = 0
        self._loaded: dict[int, _Loaded] = {}
        self._history: dict[str, _History] = {}
        self._local: dict[str, bool] = {}  # server address -> it runs in this process tree

    def time_reference(self, session) -> Reference:
        """One timing of the reference on ``session``'s device (loaded there on first use)."""
        loaded = self._loaded.get(id(session.sess))
        if loaded is None or loaded.sess is not session.sess:
            loaded = _Loaded(session, self.reference, self.repeat, self.min_repeat_ms)
            self._loaded[id(session.sess)] = loaded
        return Reference(loaded.time_kernel(), loaded.time_network())

    def _medians(self, session, before: Reference) -> tuple[float, float]:
        """Running medians on this device; the first batch is held to its own opening reference.

        (Timings of the reference back to back run hotter than timings between
        batches, by 7-8% here, so they would make a biased start.)
        """
        hist = self._history.setdefault(session.name, _History())
        return hist.medians() if hist.kernel else (before.kernel_us, before.network_us)

    def run(self, session, measure: Callable[[], T], on_redo: Callable[[str], None] | None = None) -> tuple[T, Bracket]:
        """Run ``measure()`` between two reference timings, again while a reference moved too far.

        Returns
        -------
        (value, Bracket)
            What the accepted attempt of ``measure`` returned and its bracket.
        """
        self.batches += 1
        watch = self._watches(session)
        for attempt in range(1, self.max_attempts + 1):
            start = cpu_sample() if watch else None
            before = self.time_reference(session)
            km, nm = self._medians(session, before)
            value = measure()
            after = self.time_reference(session)
            load = load_between(start, cpu_sample()) if watch else None
            worst = max(deviation(before, km, nm), deviation(after, km, nm))
            why = self._why_again(worst, load)
            last = attempt == self.max_attempts
            if not why or last:
                hist = self._history[session.name]
                hist.add(before)
                hist.add(after)
                self.drifted += int(bool(why))
                return value, Bracket(before, after, km, nm, attempt, bool(why), load, why)
            self.redone += 1
            if on_redo:
                on_redo(f"{why}: measuring the batch again (attempt {attempt + 1}/{self.max_attempts})")
            time.sleep(self.rests_s[min(attempt - 1, len(self.rests_s) - 1)])
        raise AssertionError("unreachable")

    def _watches(self, session) -> bool:
        """Whether other processes' CPU time is counted on ``session``: its server runs in this process tree."""
        if self.max_foreign_cores is None:
            return False
        if session.address not in self._local:
            self._local[session.address] = serves_here(session.address)
        return self._local[session.address]

    def _why_again(self, worst: float, load: HostLoad | None) -> str:
        """Why a batch must be measured again ('' when it stands)."""
        if worst > self.tolerance:
            return f"reference moved {worst:.1%} (> {self.tolerance:.0%})"
        if load is not None and load.too_busy(self.max_foreign_cores):
            return (f"other processes took {load.foreign_cores:.2f} cores meanwhile "
                    f"(> {self.max_foreign_cores:.2f})")
        return ""

    def forget(self, session) -> None:
        """Drop what was loaded in ``session``: call it before the session closes (its handles keep it open)."""
        for k in [k for k, v in self._loaded.items() if v.sess is session.sess]:
            del self._loaded[k]

    def summary(self) -> dict[str, int]:
        """Batches bracketed, re-measurements, and batches kept although drifted."""
        return {"batches": self.batches, "redone": self.redone, "drifted": self.drifted}
