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
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwface.errors import HwfaceError, error_line
from hwface.latency.sample_kinds import ACTS, CHANNELS, KIND_TABLE, SIZE_WEIGHTS, SIZES, GraphBuilder  # noqa: F401
from hwface.latency.sample_kinds import choice as _choice
from hwface.tune.kernel import DEFAULT_TRIALS

KINDS = tuple(KIND_TABLE)  # conv, dwconv, pwconv, gpwconv, se, activation, shuffle, add, pool, fc, gdconv
REGIMES = ("default", "tuned")
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

def _kind(name: str):
    if name not in KIND_TABLE:
        raise HwfaceError(f"unknown sampler kind {name!r} (known: {', '.join(KINDS)})")
    return KIND_TABLE[name]


def draw(kind: str, rng: np.random.Generator) -> SampleConfig:
    """One configuration of ``kind`` from the prior (feature-map size and activation first, for every kind)."""
    entry = _kind(kind)
    hw = _choice(rng, SIZES, SIZE_WEIGHTS)
    act = _choice(rng, ACTS)
    return SampleConfig.make(kind, **entry.draw(rng, hw, act))


def config_madds(cfg: SampleConfig) -> int:
    """Multiply-adds of a configuration's conv/linear parts."""
    p = cfg.p
    return _kind(cfg.kind).madds(p, p.get("hw", 1))


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
    entry = _kind(cfg.kind)
    for _ in range(4 * n):
        if not keys or len(out) >= n:
            break
        k = _choice(rng, keys)
        q = dict(p)
        v = p[k]
        if k in ("cin", "cout", "c") and not entry.grouped:
            seq = CHANNELS if v in CHANNELS else tuple(sorted(set(CHANNELS) | {v}))
            j = seq.index(v) + _choice(rng, (-1, 1))
            q[k] = seq[min(max(j, 0), len(seq) - 1)]
        elif k == "hw" and not entry.fixed_hw:
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
    entry = _kind(cfg.kind)
    p = cfg.p
    builder = GraphBuilder(seed)
    return builder.model(entry.graph(builder, p, p.get("hw", 1)), f"sample_{cfg.kind}")


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
class BuiltBatch:
    """A batch of configurations compiled into one kernel library (``so_path``; None when none built)."""

    configs: list[SampleConfig]
    so_path: Path | None
    kernels: list[tuple[SampleConfig, Any, Any]]  # (config, KernelSpec, KernelCall)
    failed: dict[str, str]
    schedules: dict[str, str] = field(default_factory=dict)  # kernel function -> schedule hash (tuned regime)


def build_batch(configs: list[SampleConfig], spec, work: Path, tag: str,
                tune: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> BuiltBatch:
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
            failed[cfg.config_id] = f"{type(exc).__name__}: {error_line(exc)}"
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
    return BuiltBatch(configs, so, kernels, failed, schedules)


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
    seed, batch : int
        Seed of the prior stream (keep it to resume); configurations built into one library and timed together.
    adaptive_fraction : float
        Share of ``n`` chosen by adaptive densification (the rest from the prior).
    repeat, min_repeat_ms, trials_per_kernel
        ``time_evaluator`` samples per kernel, minimum sample length (ms), tuned candidates
        per kernel (``tuned`` regime, TVM's default schedule measured besides; stored in each row).
    db_path : path, optional
        Latency database (default: the user's copy, :meth:`~hwface.latency.store.LatencyStore.for_writing`).
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
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.latency.sample_run import SamplerRun, SamplerSettings
    from hwface.latency.store import LatencyStore
    from hwface.rpc.embedded import device_for

    spec = _sampling_target(target, kinds, regime, n, batch, adaptive_fraction)
    say = progress or (lambda done, total, msg: None)
    store = LatencyStore(Path(db_path)) if db_path else LatencyStore.for_writing(spec.name)
    work = Path(tempfile.mkdtemp(prefix="hwface-sample-"))
    try:
        with device_for(spec, tracker) as ep:
            ep, devices = _devices_under(ep, key)
            today = current_fingerprint(spec).digest()
            done_ids = store.config_done(spec.name, regime, ep.key, today)
            report = SampleReport(spec.name, regime, ep.key, devices, n, len(done_ids), fingerprint=today,
                                  db_path=str(store.path))
            if len(done_ids) >= n:
                return report
            guard = _new_guard(spec, say, len(done_ids), n) if guard is None else guard
            settings = SamplerSettings(tuple(kinds), n, regime, seed, batch, adaptive_fraction, repeat,
                                       min_repeat_ms, trials_per_kernel)
            run = SamplerRun(spec, ep, devices, store, settings, today, report, done_ids, guard, say)
            say(len(done_ids), n, f"{n - len(done_ids)} configurations to measure on {devices} device(s) under {ep.key!r}")
            return run.measure_all(work)
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)


def _sampling_target(target, kinds, regime: str, n: int, batch: int, adaptive_fraction: float):
    """The checked arguments' target, linker found; refuses an emulated one."""
    from hwface.latency.store import EmulatedMeasurement
    from hwface.targets import TargetSpec, load_target

    _check_sample_args(kinds, regime, n, batch, adaptive_fraction)
    spec = target if isinstance(target, TargetSpec) else load_target(target)
    if spec.emulated:
        raise EmulatedMeasurement(f"target {spec.name} is emulated: its latencies are never stored")
    spec.linker()
    return spec


def _new_guard(spec, say, done: int, n: int):
    from hwface.measure.drift import DriftGuard

    say(done, n, "building the drift guard's reference")
    return DriftGuard(spec)


def _devices_under(ep, key: str | None):
    """(endpoint, device count) of ``key`` (default: the endpoint's) at the endpoint's tracker; none is an error."""
    from hwface.rpc.devices import NoDevice, devices_under
    from hwface.rpc.embedded import DeviceEndpoint

    if key:
        ep = DeviceEndpoint(ep.tracker_host, ep.tracker_port, key, ep.emulated)
    devices = devices_under(ep.tracker, ep.key)
    if devices == 0:
        raise NoDevice(f"no device registered under key {ep.key!r} at tracker {ep.tracker}")
    return ep, devices


def _check_sample_args(kinds, regime: str, n: int, batch: int, adaptive_fraction: float) -> None:
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise HwfaceError(f"unknown sampler kind(s) {', '.join(bad) or '(none given)'} (known: {', '.join(KINDS)})")
    if regime not in REGIMES:
        raise HwfaceError(f"unknown regime {regime!r} (known: {', '.join(REGIMES)})")
    if n < 1 or batch < 1 or not 0 <= adaptive_fraction <= 1:
        raise HwfaceError("--n and --batch must be positive and the adaptive fraction within [0, 1]")
