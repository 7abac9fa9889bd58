"""Kernel sampler: layer configurations beyond the zoo, built as kernels, measured, stored.

As nn-Meter does: configurations are first drawn from a prior over the shapes
face-recognition CNNs use (feature maps 112..4 px, channels 16..512, the zoo's
kernels, strides and activations); then, in *adaptive* rounds, a model fitted
on what is measured so far (per kind, least squares on log features) points at
the configurations it predicts worst, and their neighbours (one channel count,
size or kernel changed) are measured next.

Each configuration is a tiny ONNX graph (e.g. Conv + PReLU, or an SE block),
imported and fused exactly like a zoo network (so its kernels get the same
:class:`~hwface.latency.key.LayerKey` as the same layer inside a network); every
kernel it fuses into is timed on the device and stored.

Two regimes, stored apart (the ``regime`` column) and never mixed:

``default``
    TVM's schedule without tuning. Cheap: sample widely.
``tuned``
    Each kernel tuned first with a small trial budget (stated in each row) by
    :func:`hwface.tune.kernel.tune_kernels`, on the same device(s), in a private
    database; the row's ``tuning_db_hash`` is the hash of the schedule it timed.

A run resumes where it stopped: configurations are drawn from a seeded stream
and the ones already done (``sample_configs`` table) are skipped; ``n`` is the
number of configurations wanted in total for the target, regime and device key.
With several servers under the key, batches are timed on all of them at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwface.errors import HwfaceError
from hwface.tune.kernel import DEFAULT_TRIALS, tune_kernels

KINDS = ("conv", "dwconv", "pwconv", "gpwconv", "se", "activation", "shuffle", "add", "pool", "fc", "gdconv")
REGIMES = ("default", "tuned")
ACTS = ("none", "relu", "prelu", "swish", "hardswish", "sigmoid")
SIZES = (112, 56, 28, 14, 7)
SIZE_WEIGHTS = (0.1, 0.25, 0.25, 0.25, 0.15)
CHANNELS = (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512)
MAX_MADDS = 1.5e9  # drawn configurations above this are redrawn (untuned TVM takes seconds on them)


@dataclass(frozen=True)
class SampleConfig:
    """One layer configuration: ``kind`` and its parameters (plain ints and strings)."""

    kind: str
    params: tuple[tuple[str, Any], ...]

    @classmethod
    def make(cls, kind: str, **params) -> "SampleConfig":
        return cls(kind, tuple(sorted(params.items())))

    @property
    def p(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def config_id(self) -> str:
        return hashlib.sha1(json.dumps([self.kind, self.params]).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.p}


@dataclass
class SampleReport:
    """What a sampling run did: configurations measured, kernels stored, failures, where."""

    target: str
    regime: str
    device_key: str
    devices: int
    wanted: int
    already_done: int
    measured_configs: int = 0
    stored_kernels: int = 0
    failed_configs: int = 0
    prior_configs: int = 0
    adaptive_configs: int = 0
    redone_batches: int = 0
    drifted_batches: int = 0
    fingerprint: str = ""
    db_path: str = ""
    errors: list[str] = field(default_factory=list)


# -- the prior -----------------------------------------------------------------

def _choice(rng, seq, p=None):
    return seq[int(rng.choice(len(seq), p=p))]


def draw(kind: str, rng: np.random.Generator) -> SampleConfig:
    """One configuration of ``kind`` from the prior."""
    hw = _choice(rng, SIZES, SIZE_WEIGHTS)
    act = _choice(rng, ACTS)
    if kind == "conv":
        k = _choice(rng, (3, 5, 7, 1), (0.5, 0.2, 0.15, 0.15))
        return SampleConfig.make(kind, hw=hw, cin=_choice(rng, (3,) + CHANNELS[:8]) if hw == 112 else _choice(rng, CHANNELS),
                                 cout=_choice(rng, CHANNELS), k=k, s=_choice(rng, (1, 2)), act=act)
    if kind == "dwconv":
        return SampleConfig.make(kind, hw=hw, c=_choice(rng, CHANNELS), k=_choice(rng, (3, 5, 7)),
                                 s=_choice(rng, (1, 2)), act=act)
    if kind == "pwconv":
        return SampleConfig.make(kind, hw=hw, cin=_choice(rng, CHANNELS), cout=_choice(rng, CHANNELS), act=act,
                                 residual=int(rng.random() < 0.2))
    if kind == "gpwconv":
        g = _choice(rng, (2, 3, 4, 6, 8, 12, 16))
        return SampleConfig.make(kind, hw=hw, g=g, cin=g * int(rng.integers(2, 33)), cout=g * int(rng.integers(2, 33)),
                                 act=act)
    if kind == "se":
        return SampleConfig.make(kind, hw=hw, c=_choice(rng, CHANNELS[3:]), r=_choice(rng, (4, 8, 16)),
                                 act=_choice(rng, ("relu", "prelu")))
    if kind == "activation":
        return SampleConfig.make(kind, hw=hw, c=_choice(rng, CHANNELS), act=_choice(rng, ACTS[1:]))
    if kind == "shuffle":
        g = _choice(rng, (2, 3, 4))
        return SampleConfig.make(kind, hw=hw, g=g, c=g * int(rng.integers(4, 65)))
    if kind == "add":
        return SampleConfig.make(kind, hw=hw, c=_choice(rng, CHANNELS), act=_choice(rng, ("none", "relu", "prelu")))
    if kind == "pool":
        op = _choice(rng, ("max", "avg", "global"))
        return SampleConfig.make(kind, hw=hw, c=_choice(rng, CHANNELS), op=op, k=_choice(rng, (2, 3)),
                                 s=_choice(rng, (1, 2)))
    if kind == "fc":
        c, side = _choice(rng, (128, 256, 512)), _choice(rng, (1, 4, 7))
        return SampleConfig.make(kind, fin=c * side * side, fout=_choice(rng, (128, 256, 512, 1024)))
    if kind == "gdconv":
        return SampleConfig.make(kind, hw=_choice(rng, (4, 7, 14)), c=_choice(rng, (128, 256, 512, 1024)))
    raise HwfaceError(f"unknown sampler kind {kind!r} (known: {', '.join(KINDS)})")


def config_madds(cfg: SampleConfig) -> int:
    """Multiply-adds of a configuration's conv/linear parts."""
    p = cfg.p
    hw = p.get("hw", 1)
    if cfg.kind == "conv":
        o = hw // p["s"]
        return o * o * p["cout"] * p["cin"] * p["k"] ** 2
    if cfg.kind == "dwconv":
        o = hw // p["s"]
        return o * o * p["c"] * p["k"] ** 2
    if cfg.kind == "pwconv":
        return hw * hw * p["cin"] * p["cout"]
    if cfg.kind == "gpwconv":
        return hw * hw * p["cin"] * p["cout"] // p["g"]
    if cfg.kind == "se":
        return 2 * p["c"] * (p["c"] // p["r"])
    if cfg.kind == "fc":
        return p["fin"] * p["fout"]
    if cfg.kind == "gdconv":
        return p["c"] * hw * hw
    return 0


def prior_stream(kinds: tuple[str, ...], seed: int):
    """The seeded stream of prior configurations (kinds in turn; oversized ones redrawn)."""
    rng = np.random.default_rng(seed)
    i = 0
    while True:
        kind = kinds[i % len(kinds)]
        i += 1
        cfg = draw(kind, rng)
        if config_madds(cfg) <= MAX_MADDS:
            yield cfg


def neighbours(cfg: SampleConfig, rng: np.random.Generator, n: int = 2) -> list[SampleConfig]:
    """Configurations one step away from ``cfg`` (one channel count, size, kernel or stride changed)."""
    p = cfg.p
    out = []
    keys = [k for k in p if isinstance(p[k], int) and k not in ("residual",)]
    for _ in range(4 * n):
        if not keys or len(out) >= n:
            break
        k = _choice(rng, keys)
        q = dict(p)
        v = p[k]
        if k in ("cin", "cout", "c") and cfg.kind not in ("gpwconv", "shuffle"):
            seq = CHANNELS if v in CHANNELS else tuple(sorted(set(CHANNELS) | {v}))
            j = seq.index(v) + _choice(rng, (-1, 1))
            q[k] = seq[min(max(j, 0), len(seq) - 1)]
        elif k == "hw" and cfg.kind != "gdconv":
            j = SIZES.index(v) + _choice(rng, (-1, 1)) if v in SIZES else 0
            q[k] = SIZES[min(max(j, 0), len(SIZES) - 1)]
        elif k in ("cin", "cout", "c"):
            step = p.get("g", 1)
            q[k] = max(2 * step, v + step * _choice(rng, (-2, -1, 1, 2)))
        elif k == "fin":
            q[k] = max(64, int(v * _choice(rng, (0.5, 2.0))))
        elif k == "fout":
            q[k] = max(64, int(v * _choice(rng, (0.5, 2.0))))
        else:
            continue
        c2 = SampleConfig.make(cfg.kind, **q)
        if c2 != cfg and config_madds(c2) <= MAX_MADDS and c2 not in out:
            out.append(c2)
    return out


# -- configurations as ONNX graphs ---------------------------------------------

def config_onnx(cfg: SampleConfig, seed: int = 0):
    """A tiny static ONNX graph computing ``cfg`` (float32, batch 1, random weights)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    p = cfg.p
    nodes, inits, inputs = [], [], []
    counter = [0]

    def name(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def init(arr: np.ndarray) -> str:
        n = name("w")
        inits.append(numpy_helper.from_array(arr.astype("float32"), n))
        return n

    def inp(shape) -> str:
        n = f"input{len(inputs)}" if inputs else "input"
        inputs.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape)))
        return n

    def node(op, ins, scope, **attrs) -> str:
        out = name("t")
        nodes.append(helper.make_node(op, ins, [out], name=f"/{scope}/{op}", **attrs))
        return out

    def conv(x, cin, cout, k, s, g, scope, pad=True):
        w = init(rng.standard_normal((cout, cin // g, k, k)) * 0.1)
        b = init(rng.standard_normal(cout) * 0.1)
        pd = k // 2 if pad else 0
        return node("Conv", [x, w, b], scope, kernel_shape=[k, k], strides=[s, s], pads=[pd] * 4, group=g)

    def activation(x, act, c, scope):
        if act == "none":
            return x
        if act == "relu":
            return node("Relu", [x], scope)
        if act == "prelu":
            return node("PRelu", [x, init(np.full((c, 1, 1), 0.25))], scope)
        if act == "sigmoid":
            return node("Sigmoid", [x], scope)
        if act == "hardswish":
            return node("HardSwish", [x], scope)
        if act == "swish":
            return node("Mul", [x, node("Sigmoid", [x], scope)], scope)
        raise HwfaceError(f"unknown activation {act!r}")

    hw, kind = p.get("hw", 1), cfg.kind
    if kind == "conv":
        y = activation(conv(inp((1, p["cin"], hw, hw)), p["cin"], p["cout"], p["k"], p["s"], 1, "conv"), p["act"],
                       p["cout"], "act")
    elif kind == "dwconv":
        y = activation(conv(inp((1, p["c"], hw, hw)), p["c"], p["c"], p["k"], p["s"], p["c"], "dw"), p["act"], p["c"],
                       "act")
    elif kind == "pwconv":
        x = inp((1, p["cin"], hw, hw))
        y = activation(conv(x, p["cin"], p["cout"], 1, 1, 1, "pw"), p["act"], p["cout"], "act")
        if p.get("residual") and p["cin"] == p["cout"]:
            y = node("Add", [x, y], "res")
    elif kind == "gpwconv":
        y = activation(conv(inp((1, p["cin"], hw, hw)), p["cin"], p["cout"], 1, 1, p["g"], "gpw"), p["act"],
                       p["cout"], "act")
    elif kind == "se":
        c, r = p["c"], max(1, p["c"] // p["r"])
        x = inp((1, c, hw, hw))
        s = node("GlobalAveragePool", [x], "se/pool")
        s = activation(conv(s, c, r, 1, 1, 1, "se/fc1"), p["act"], r, "se/act")
        s = node("Sigmoid", [conv(s, r, c, 1, 1, 1, "se/fc2")], "se/gate")
        y = node("Mul", [x, s], "se")
    elif kind == "activation":
        y = activation(inp((1, p["c"], hw, hw)), p["act"], p["c"], "act")
    elif kind == "shuffle":
        g, c = p["g"], p["c"]
        x = inp((1, c, hw, hw))
        s1, s2 = name("shape"), name("shape")
        inits.append(numpy_helper.from_array(np.array([1, g, c // g, hw, hw], dtype="int64"), s1))
        inits.append(numpy_helper.from_array(np.array([1, c, hw, hw], dtype="int64"), s2))
        y = node("Reshape", [x, s1], "shuffle")
        y = node("Transpose", [y], "shuffle", perm=[0, 2, 1, 3, 4])
        y = node("Reshape", [y, s2], "shuffle")
    elif kind == "add":
        a, b = inp((1, p["c"], hw, hw)), inp((1, p["c"], hw, hw))
        y = activation(node("Add", [a, b], "add"), p["act"], p["c"], "act")
    elif kind == "pool":
        x = inp((1, p["c"], hw, hw))
        if p["op"] == "global" or hw < p["k"]:
            y = node("GlobalAveragePool", [x], "pool")
        else:
            op = "MaxPool" if p["op"] == "max" else "AveragePool"
            y = node(op, [x], "pool", kernel_shape=[p["k"]] * 2, strides=[p["s"]] * 2, pads=[(p["k"] - 1) // 2] * 4)
    elif kind == "fc":
        w = init(rng.standard_normal((p["fout"], p["fin"])) * 0.01)
        b = init(rng.standard_normal(p["fout"]) * 0.01)
        y = node("Gemm", [inp((1, p["fin"])), w, b], "fc", transB=1)
    elif kind == "gdconv":
        y = conv(inp((1, p["c"], hw, hw)), p["c"], p["c"], hw, 1, p["c"], "gdc", pad=False)
    else:
        raise HwfaceError(f"unknown sampler kind {kind!r} (known: {', '.join(KINDS)})")
    graph = helper.make_graph(nodes, f"sample_{kind}", inputs,
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model


# -- the adaptive model -----------------------------------------------------------

def _features(cfg: SampleConfig) -> dict[str, float]:
    """Named features of a configuration for the densification model (log scale)."""
    p = cfg.p
    hw = p.get("hw", 1)
    c_in = p.get("cin", p.get("c", p.get("fin", 1)))
    c_out = p.get("cout", p.get("c", p.get("fout", 1)))
    s = p.get("s", 1)
    return {
        "log_madds": math.log1p(config_madds(cfg)),
        "log_in_elems": math.log1p(c_in * hw * hw),
        "log_out_elems": math.log1p(c_out * (hw // s) ** 2),
        "kernel": float(p.get("k", 1)),
    }


def worst_predicted(done: list[tuple[SampleConfig, float]], top: int) -> list[SampleConfig]:
    """Configurations whose latency a per-kind least-squares fit (log latency on log features) misses most."""
    by_kind: dict[str, list[tuple[SampleConfig, float]]] = {}
    for cfg, lat in done:
        if lat and lat > 0:
            by_kind.setdefault(cfg.kind, []).append((cfg, lat))
    scored: list[tuple[float, SampleConfig]] = []
    for kind, items in by_kind.items():
        names = list(_features(items[0][0]))
        X = np.array([[1.0] + [_features(c)[n] for n in names] for c, _ in items])
        y = np.log(np.array([lat for _, lat in items]))
        if len(items) <= X.shape[1]:
            scored.extend((1.0, c) for c, _ in items)  # too few to fit: all are uncertain
            continue
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        err = np.abs(X @ coef - y)
        scored.extend((float(e), c) for e, (c, _) in zip(err, items))
    scored.sort(key=lambda t: -t[0])
    return [c for _, c in scored[:top]]


# -- running -------------------------------------------------------------------------

@dataclass
class _Built:
    configs: list[SampleConfig]
    so_path: Path | None
    kernels: list[tuple[SampleConfig, Any, Any]]  # (config, KernelSpec, KernelCall)
    failed: dict[str, str]
    schedules: dict[str, str] = field(default_factory=dict)  # kernel function -> schedule hash (tuned regime)


def _error_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[-1][:300] if text else ''}"


def build_batch(configs: list[SampleConfig], spec, work: Path, tag: str,
                tune: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> _Built:
    """Import, fuse and compile a batch of configurations into one kernel library.

    With ``tune`` (the tuned regime), the batch's kernels are tuned first:
    ``tune(name -> PrimFunc)`` returns name -> :class:`hwface.tune.kernel.TunedKernel`,
    and a configuration with a kernel left untuned is recorded as failed.
    """
    from hwface.compile.pipeline import fuse_traced
    from hwface.compile.relax_import import import_onnx
    from hwface.latency.kernels import map_to_onnx
    from hwface.measure.kernel_timing import KernelSpec, build_kernel_library, primfuncs

    funcs: dict[str, Any] = {}
    kernels, failed = [], {}
    target = spec.tvm_target()
    for j, cfg in enumerate(configs):
        try:
            model = config_onnx(cfg)
            fused, trace = fuse_traced(import_onnx(model), target)
            calls = [c for c in map_to_onnx(fused, model, trace=trace) if not c.runs_as_view]
            pf = primfuncs(fused)
            seen = set()
            for c in calls:
                if c.kernel in seen:
                    continue
                seen.add(c.kernel)
                fname = f"c{j}_{c.kernel}"
                funcs[fname] = pf[c.kernel]
                kernels.append((cfg, KernelSpec(fname, tuple(c.arg_shapes), tuple(c.arg_dtypes)), c))
        except Exception as exc:  # a configuration TVM cannot build is recorded, not fatal
            failed[cfg.config_id] = _error_line(exc)
    schedules: dict[str, str] = {}
    if tune is not None and funcs:
        tuned = tune(funcs)
        for cfg, ks, _ in kernels:
            if ks.name not in tuned:
                failed.setdefault(cfg.config_id, f"no schedule of kernel {ks.name} ran on the device")
        kernels = [k for k in kernels if k[0].config_id not in failed]
        funcs = {ks.name: tuned[ks.name].func for _, ks, _ in kernels}
        schedules = {name: tuned[name].schedule_hash for name in funcs}
    so = build_kernel_library(funcs, spec, work / f"{tag}.so") if funcs else None
    return _Built(configs, so, kernels, failed, schedules)


def sample(
    target="host",
    kinds: tuple[str, ...] = KINDS,
    n: int = 100,
    regime: str = "default",
    tracker: str | None = None,
    key: str | None = None,
    seed: int = 0,
    batch: int = 16,
    adaptive_fraction: float = 0.3,
    repeat: int = 5,
    min_repeat_ms: float = 10,
    trials_per_kernel: int = DEFAULT_TRIALS,
    db_path: str | Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    guard=None,
) -> SampleReport:
    """Sample layer configurations, measure their kernels on the device(s), store them.

    Parameters
    ----------
    target : str or TargetSpec
    kinds : tuple of str
        Among :data:`KINDS`.
    n : int
        Configurations wanted in total for (target, regime, device key); the run
        measures the ones missing (resumes).
    regime : str
        ``default`` or ``tuned`` (see the module docstring).
    tracker, key : str, optional
        Device (default: the target's; the embedded device for ``host``).
    seed : int
        Seed of the prior stream (keep it to resume).
    batch : int
        Configurations compiled into one library and timed together.
    adaptive_fraction : float
        Share of ``n`` chosen by adaptive densification (the rest from the prior).
    repeat, min_repeat_ms
        ``time_evaluator`` samples per kernel and minimum sample length (ms).
    trials_per_kernel : int
        Tuned candidates per kernel (``tuned`` regime; TVM's default schedule is
        measured besides), stored in each row.
    db_path : path, optional
        Latency database (default ``latency_db/<target>.sqlite``).
    progress : callable, optional
        ``progress(done, total, message)``.
    guard : DriftGuard or False, optional
        Brackets every batch with the reference (:mod:`hwface.measure.drift`);
        default: a new guard for ``target``; False: none (tests only).

    Raises
    ------
    HwfaceError
        Unknown kinds/regime or an emulated device.
    """
    import tvm

    import hwface
    from hwface.latency.key import layer_key
    from hwface.latency.fingerprint import current_fingerprint, measured_fingerprint
    from hwface.latency.kernels import kernel_madds
    from hwface.measure.drift import DriftGuard
    from hwface.latency.store import EmulatedMeasurement, LatencyStore, Measurement
    from hwface.latency.store import db_path as default_db_path
    from hwface.measure.kernel_timing import time_kernels
    from hwface.rpc.devices import connect, devices_under
    from hwface.rpc.embedded import DeviceEndpoint, device_for
    from hwface.rpc.remote import call_with_deadline
    from hwface.targets import TargetSpec, load_target

    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise HwfaceError(f"unknown sampler kind(s) {', '.join(bad) or '(none given)'} (known: {', '.join(KINDS)})")
    if regime not in REGIMES:
        raise HwfaceError(f"unknown regime {regime!r} (known: {', '.join(REGIMES)})")
    if n < 1 or batch < 1 or not 0 <= adaptive_fraction <= 1:
        raise HwfaceError("--n and --batch must be positive and the adaptive fraction within [0, 1]")
    spec = target if isinstance(target, TargetSpec) else load_target(target)
    if spec.emulated:
        raise EmulatedMeasurement(f"target {spec.name} is emulated: its latencies are never stored")
    spec.linker()
    say = progress or (lambda done, total, msg: None)
    path = Path(db_path) if db_path else default_db_path(spec.name)
    store = LatencyStore(path)
    work = Path(tempfile.mkdtemp(prefix="hwface-sample-"))
    lock = threading.Lock()
    try:
        with device_for(spec, tracker) as ep:
            if key:
                ep = DeviceEndpoint(ep.tracker_host, ep.tracker_port, key, ep.emulated)
            devices = devices_under(ep.tracker, ep.key)
            if devices == 0:
                from hwface.rpc.devices import NoDevice

                raise NoDevice(f"no device registered under key {ep.key!r} at tracker {ep.tracker}")
            today = current_fingerprint(spec).digest()
            done_ids = store.config_done(spec.name, regime, ep.key, today)
            report = SampleReport(spec.name, regime, ep.key, devices, n, len(done_ids), fingerprint=today,
                                  db_path=str(path))
            missing = max(0, n - len(done_ids))
            if missing == 0:
                return report
            if guard is None:
                say(len(done_ids), n, "building the drift guard's reference")
                guard = DriftGuard(spec)
            n_prior_total = n - int(round(n * adaptive_fraction))
            local = threading.local()
            sessions: list = []

            def session():
                if getattr(local, "s", None) is None:
                    local.s = connect(ep.tracker, ep.key, timeout_s=300, session_timeout_s=0)
                    local.info = call_with_deadline(local.s.device_info, 60, f"device {local.s.name}")
                    with lock:
                        sessions.append(local.s)
                    if local.info and local.info.get("emulated"):
                        raise EmulatedMeasurement(
                            f"device {local.s.name} is emulated: its latencies mean nothing and are never stored")
                return local.s, local.info

            def run(built: _Built) -> tuple[_Built, dict, dict | None, str]:
                s, info = session()
                timings, bracket = {}, None
                if built.so_path is not None:
                    loaded: dict[str, Any] = {}  # a re-measured batch reuses its library

                    def timed() -> dict:
                        return time_kernels(s, built.so_path, [k for _, k, _ in built.kernels], repeat, min_repeat_ms,
                                            loaded=loaded)

                    def guarded():
                        if not guard:
                            return timed(), None
                        return guard.run(s, timed, on_redo=lambda msg: say(
                            len(done_ids) + report.measured_configs + report.failed_configs, n, msg))

                    timings, bracket = call_with_deadline(guarded, 1800, f"timing a batch on {s.name}")
                if regime == "tuned":  # free the device: the next batch is tuned on it first
                    if guard:
                        guard.forget(s)
                    s.sess, local.s = None, None
                return built, timings, info, s.name, bracket

            measured: list[tuple[SampleConfig, float]] = []

            def finish(built: _Built, timings: dict, info: dict | None, device: str, bracket) -> None:
                ms, per_cfg = [], {}
                fp = measured_fingerprint(spec, info)
                reference = bracket.to_dict() if bracket is not None else None
                for cfg, ks, call in built.kernels:
                    st = timings[ks.name]
                    per_cfg[cfg.config_id] = per_cfg.get(cfg.config_id, 0.0) + st.median_us
                    ms.append(Measurement(
                        key=layer_key(call), target=spec.name, device_key=ep.key, tvm_version=tvm.__version__,
                        hwface_version=hwface.__version__, tuned=regime == "tuned", regime=regime,
                        median_us=st.median_us, p10_us=st.p10_us, p90_us=st.p90_us, cv=st.cv, samples=st.samples,
                        trials_per_kernel=trials_per_kernel if regime == "tuned" else None,
                        tuning_db_hash=built.schedules.get(ks.name),
                        device_machine=(info or {}).get("machine"), device_info={**(info or {}), "address": device},
                        min_repeat_ms=min_repeat_ms, source=f"sample:{cfg.config_id}", kernel_name=call.kernel,
                        madds=kernel_madds(call), fingerprint=fp, reference=reference))
                marks = []
                for cfg in built.configs:
                    cid = cfg.config_id
                    if cid in built.failed:
                        marks.append((cid, spec.name, regime, ep.key, cfg.kind, cfg.to_dict(), "failed", 0,
                                      built.failed[cid]))
                    else:
                        k = sum(1 for c, _, _ in built.kernels if c.config_id == cid)
                        marks.append((cid, spec.name, regime, ep.key, cfg.kind,
                                      {**cfg.to_dict(), "latency_us": per_cfg.get(cid)}, "done", k, None))
                        measured.append((cfg, per_cfg.get(cid, 0.0)))
                with lock:
                    report.stored_kernels += store.add(ms)
                    store.mark_configs(marks, fp.digest())
                    if guard:
                        report.redone_batches, report.drifted_batches = guard.redone, guard.drifted
                    report.measured_configs += len(built.configs) - len(built.failed)
                    report.failed_configs += len(built.failed)
                    report.errors.extend(f"{cid}: {e}" for cid, e in built.failed.items())
                    say(len(done_ids) + report.measured_configs + report.failed_configs, n,
                        f"{report.stored_kernels} kernels stored")

            # previously measured configurations feed the adaptive model
            for cfg_dict, lat in store.sampled_configs(spec.name, regime, ep.key, today):
                kind = cfg_dict.pop("kind")
                measured.append((SampleConfig.make(kind, **cfg_dict), lat))
            stream = prior_stream(tuple(kinds), seed)
            rng = np.random.default_rng(seed + 1)
            planned: set[str] = set(done_ids)

            def next_batch() -> list[SampleConfig]:
                out: list[SampleConfig] = []
                total_planned = len(planned)
                want = min(batch, n - total_planned)
                if want <= 0:
                    return out
                if total_planned < n_prior_total:
                    while len(out) < min(want, n_prior_total - total_planned):
                        cfg = next(stream)
                        if cfg.config_id not in planned:
                            planned.add(cfg.config_id)
                            out.append(cfg)
                            report.prior_configs += 1
                    return out
                for base in worst_predicted(list(measured), top=max(4, want)):
                    for cfg in neighbours(base, rng):
                        if cfg.kind in kinds and cfg.config_id not in planned and len(out) < want:
                            planned.add(cfg.config_id)
                            out.append(cfg)
                            report.adaptive_configs += 1
                while len(out) < want:  # the model found nothing new: back to the prior
                    cfg = next(stream)
                    if cfg.config_id not in planned:
                        planned.add(cfg.config_id)
                        out.append(cfg)
                        report.prior_configs += 1
                return out

            tune = None
            if regime == "tuned":
                def tune(funcs: dict[str, Any]) -> dict[str, Any]:
                    say(len(done_ids) + report.measured_configs + report.failed_configs, n,
                        f"tuning {len(funcs)} kernels, {trials_per_kernel} trials each")
                    return tune_kernels(funcs, spec, ep, trials_per_kernel, seed=seed)

            say(len(done_ids), n, f"{missing} configurations to measure on {devices} device(s) under {ep.key!r}")
            in_flight_max = 1 if spec.is_host else devices  # on the host, never compile while timing
            with ThreadPoolExecutor(max_workers=devices) as pool:
                futures = set()
                tag = 0
                while True:
                    while len(futures) < in_flight_max:
                        configs = next_batch()
                        if not configs:
                            break
                        tag += 1
                        built = build_batch(configs, spec, work, f"b{tag}", tune)
                        futures.add(pool.submit(run, built))
                    if not futures:
                        break
                    finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        finish(*fut.result())
            for s in sessions:
                if guard:
                    guard.forget(s)
                s.sess = None
            return report
    finally:
        store.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
