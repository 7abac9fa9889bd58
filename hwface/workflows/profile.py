"""`hwface profile`: per-kernel and end-to-end timing of a network on a device over RPC, stored as latency rows.

The workflow over the stages: compile (fused module, artifact), measure (the
kernel library and its timing, the drift guard), latency (kernel keys, the store).

A kernel ("layer") is one PrimFunc of the fused Relax module
(:func:`hwface.compile.pipeline.fuse`), with the schedule the deployed artifact
uses: the tuning records applied exactly as :func:`hwface.compile.build.build`
applies them, TVM's default schedule elsewhere. All kernels of a network are
compiled into one TIR library (each its own function, lowered as the Relax build
lowers it), linked for the device like an artifact, uploaded once, and timed one
by one with ``time_evaluator`` on random inputs of their argument shapes: one
warm-up call, then ``repeat`` samples of at least ``min_repeat_ms`` each. The
whole artifact built from the same fused module is timed the same way, so
``sum(kernels) / end_to_end`` shows what per-kernel timing misses (the VM's
dispatch and allocations, cache effects between kernels) instead of hiding it.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwface.errors import HwfaceError
from hwface.measure.kernel_timing import (
    KERNEL_MIN_REPEAT_MS,
    KERNEL_REPEAT,
    KernelSpec,
    apply_database,
    build_kernel_library,
    primfuncs,
    time_artifact,
    time_kernels,
)
from hwface.measure.timing import LatencyStats

GAP_WARN = 0.25  # |1 - sum/e2e| above this is reported as a large gap


@dataclass
class ProfileRow:
    """One kernel call of the network (latencies in microseconds; ``share`` of the kernel sum)."""

    index: int
    kernel: str
    layers: list[str]
    onnx_ops: list[str]
    op: str
    fused: str
    input_shapes: str
    output_shape: str
    madds: int
    median_us: float
    p10_us: float
    p90_us: float
    cv: float
    samples: int
    share: float
    key: str
    tuned: bool


@dataclass
class ProfileResult:
    """Per-kernel rows, end-to-end latency and the gap between them.

    Attributes
    ----------
    rows : list of ProfileRow
        One per kernel call, in execution order (calls the artifact runs as views,
        pure reshapes and on CPU targets channel splits and concatenations, are
        left out).
    end_to_end : LatencyStats
        The whole artifact (``main``), microseconds.
    kernel_sum_us : float
        Sum of the rows' medians, microseconds.
    ratio : float
        ``kernel_sum_us / end_to_end.median_us``.
    """

    model: str
    target: str
    device: str
    device_key: str
    device_info: dict[str, Any] | None
    tuned: bool
    tuning_db_hash: str | None
    rows: list[ProfileRow]
    end_to_end: LatencyStats
    kernel_sum_us: float
    ratio: float
    distinct_kernels: int
    tuned_kernels: int | None = None
    stored: int | None = None
    db_path: str | None = None
    measurements: list = field(default_factory=list, repr=False)
    fingerprint: str | None = None
    guard: dict[str, int] | None = None
    network: Any = field(default=None, repr=False)

    @property
    def gap_note(self) -> str:
        """One line on sum(kernels) vs end-to-end, flagging a large gap."""
        pct = (self.ratio - 1.0) * 100
        big = abs(self.ratio - 1.0) > GAP_WARN
        return (f"sum(kernels) = {self.kernel_sum_us / 1e3:.3f} ms, end-to-end = {self.end_to_end.median_us / 1e3:.3f} ms, "
                f"ratio {self.ratio:.3f} ({pct:+.1f}%)" + (" -- LARGE GAP: per-kernel timing does not add up to "
                                                          "the artifact's latency" if big else ""))

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model, "target": self.target, "device": self.device, "device_key": self.device_key,
            "tuned": self.tuned, "tuning_db_hash": self.tuning_db_hash, "kernel_calls": len(self.rows),
            "distinct_kernels": self.distinct_kernels, "tuned_kernels": self.tuned_kernels,
            "kernel_sum_us": self.kernel_sum_us, "end_to_end_us": asdict(self.end_to_end), "ratio": self.ratio,
            "large_gap": abs(self.ratio - 1.0) > GAP_WARN, "stored": self.stored, "db_path": self.db_path,
            "fingerprint": self.fingerprint, "drift_guard": self.guard,
        }


def profile_model(
    model: str | None = None, target="host", tracker: str | None = None, key: str | None = None,
    database=None, tuning_db_hash: str | None = None,
    onnx_path: str | Path | None = None, input_size: tuple[int, int] | None = None,
    input_shape: tuple[int, ...] | None = None,
    repeat: int = KERNEL_REPEAT, min_repeat_ms: float = KERNEL_MIN_REPEAT_MS, e2e_repeat: int | None = None,
    store: bool | str | Path = False, timeout_s: float = 1800.0, progress: Callable[[str], None] | None = None,
    regime: str | None = None, trials_per_kernel: int | None = None, split: str = "train",
    name: str | None = None, origin: str | None = None, arch_spec: dict[str, Any] | None = None,
    guard=None,
) -> ProfileResult:
    """Time every kernel of a network on a device, and the whole artifact.

    Parameters
    ----------
    model, onnx_path, input_size, input_shape
        A zoo name or an ONNX file, as for :func:`hwface.compile.compile_artifact`.
    target : str or TargetSpec
    tracker, key : str, optional
        ``HOST:PORT`` (default: the target's, or the embedded device for ``host``)
        and device key (default: the target's ``rpc_key``).
    database : meta_schedule Database, optional
        Tuning records, applied to kernels and artifact alike; ``tuning_db_hash``
        is recorded with the measurements when it is given.
    repeat, min_repeat_ms, e2e_repeat
        Samples per kernel, minimum duration of one sample (ms), end-to-end samples
        (default ``max(repeat, 5)``).
    store : bool or path
        Write the kernels' measurements to the latency database (True: the
        target's, :meth:`~hwface.latency.store.LatencyStore.for_writing`; a path:
        that file). Refused on an emulated device.
    timeout_s : float
        Bound on the remote part, in seconds.
    progress : callable, optional
        ``progress(message)``.
    regime, trials_per_kernel : optional
        Stored regime: ``zoo`` (the deployed schedules; the default with
        ``database``), ``default`` (TVM's default schedules; the default without
        ``database``, refused with it) or ``tuned`` (``database`` holds records of
        a fixed ``trials_per_kernel`` budget, stored in every row).
    split, name, origin, arch_spec
        ``train`` or ``heldout`` (a held-out network's rows never train), the stored
        network name (default: the model's or the ONNX file's), ``zoo`` or ``nas``,
        and the arch spec (dict) a ``nas`` network was built from.
    guard : DriftGuard or False, optional
        Brackets the kernels' timing and the end-to-end timing with the
        reference (:mod:`hwface.measure.drift`); default: a new guard when
        storing, none otherwise; False: none.

    Returns
    -------
    ProfileResult

    Raises
    ------
    EmulatedMeasurement
        ``store`` was asked on an emulated device.
    """
    from hwface.measure.drift import DriftGuard

    say = progress or (lambda msg: None)
    regime = regime or ("zoo" if database is not None else "default")
    spec = _profiling_target(target, regime, database, trials_per_kernel, bool(store))
    plan = plan_profile(spec, model, onnx_path, input_size, input_shape, database, say)
    if guard is None and store:
        say("building the drift guard's reference")
        guard = DriftGuard(spec)
    timed = time_on_device(plan, spec, tracker, key, repeat, min_repeat_ms, e2e_repeat or max(repeat, 5),
                           timeout_s, bool(store), guard, say)
    meta = RowMeta(regime, trials_per_kernel, tuning_db_hash if database is not None else None, min_repeat_ms,
                   name or plan.network.name, split)
    result = profile_result(plan, timed, spec, meta, guard)
    result.network = network_measurement(result, plan, timed, meta, origin, arch_spec)
    if store:
        _store(result, spec.name, store)
    return result


def _profiling_target(target, regime: str, database, trials_per_kernel: int | None, store: bool):
    """The target to profile on, its linker found, once the regime is known to fit; refuses storing emulated rows."""
    from hwface.latency.store import EmulatedMeasurement
    from hwface.targets import TargetSpec, load_target

    spec = target if isinstance(target, TargetSpec) else load_target(target)
    spec.linker()
    _check_regime(regime, database, trials_per_kernel)
    if store and spec.emulated:
        raise EmulatedMeasurement(f"target {spec.name} is emulated: its latencies are never stored")
    return spec


def _store(result: "ProfileResult", target: str, store: bool | str | Path) -> None:
    """Write a profile's measurements and its network row (True: the target's database; a path: that file)."""
    from hwface.latency.store import LatencyStore

    with (LatencyStore.for_writing(target) if store is True else LatencyStore(Path(store))) as db:
        result.stored = db.add(result.measurements)
        db.add_network(result.network)
    result.db_path = str(db.path)


@dataclass
class ProfilePlan:
    """What a profile times: the network, its timed kernel calls, the built kernel library and artifact."""

    network: Any
    timed_calls: list
    names: list[str]
    scheduled: set[str]  # kernels a tuning record applied to
    kernel_specs: list[KernelSpec]
    lib_path: Path
    art_path: Path
    x: np.ndarray
    tuned: bool


def plan_profile(spec, model, onnx_path, input_size, input_shape, database, say) -> ProfilePlan:
    """Export, fuse and map a network's kernels to its layers; build its kernel library and artifact."""
    from hwface.compile.build import build, export_so
    from hwface.compile.network import fused_module_traced, load_network
    from hwface.compile.slice_views import uses_views
    from hwface.latency.kernels import map_to_onnx

    say(f"exporting {model}" if model else f"loading {onnx_path}")
    network = load_network(model, onnx_path, input_size, input_shape)
    say("importing into Relax and fusing kernels")
    fused, trace = fused_module_traced(network, spec)
    calls = map_to_onnx(fused, network.onnx_model, views=uses_views(spec.tvm_target()), trace=trace)
    timed_calls = [c for c in calls if not c.runs_as_view]
    funcs = primfuncs(apply_database(fused, spec, database))
    names = sorted({c.kernel for c in timed_calls})
    # MetaScheduleApplyDatabase marks the kernels it found a record for
    scheduled = {n for n in names if funcs[n].attrs and funcs[n].attrs.get("tirx.is_scheduled")}
    work = Path(tempfile.mkdtemp(prefix="hwface-profile-"))
    say(f"building {len(names)} kernels and the artifact for {spec.name}")
    lib_path = build_kernel_library({n: funcs[n] for n in names}, spec, work / "kernels.so")
    art_path = export_so(build(fused, spec, database=database), work / "model.so", spec)
    first: dict[str, Any] = {}
    for c in timed_calls:
        first.setdefault(c.kernel, c)
    kspecs = [KernelSpec(n, tuple(first[n].arg_shapes), tuple(first[n].arg_dtypes)) for n in names]
    x = np.random.default_rng(0).uniform(-1, 1, size=network.input.shape).astype(network.input.dtype)
    return ProfilePlan(network, timed_calls, names, scheduled, kspecs, lib_path, art_path, x, database is not None)


@dataclass
class DeviceTimings:
    """The kernels' and the artifact's timings on one device, with the drift references that bracketed them."""

    kernels: dict[str, LatencyStats]
    end_to_end: LatencyStats
    kernels_bracket: Any
    e2e_bracket: Any
    info: dict[str, Any] | None
    device: str
    key: str


def time_on_device(plan: ProfilePlan, spec, tracker, key, repeat: int, min_repeat_ms: float, e2e_repeat: int,
                   timeout_s: float, storing: bool, guard, say) -> DeviceTimings:
    """Time every kernel, then the whole artifact, on the device (each bracketed by ``guard`` when given).

    Raises
    ------
    EmulatedMeasurement, HwfaceError
        The device is emulated (its timings would mean nothing).
    """
    from hwface.latency.store import EmulatedMeasurement
    from hwface.rpc.devices import connect
    from hwface.rpc.embedded import DeviceEndpoint, device_for
    from hwface.rpc.remote import call_with_deadline, check_architecture

    def bracketed(session, fn):
        return guard.run(session, fn, on_redo=say) if guard else (fn(), None)

    with device_for(spec, tracker) as ep:
        if key:
            ep = DeviceEndpoint(ep.tracker_host, ep.tracker_port, key, ep.emulated)
        say(f"timing on {ep.key}@{ep.tracker}")
        session = connect(ep.tracker, ep.key, timeout_s=min(timeout_s, 300), session_timeout_s=timeout_s)
        try:
            info = call_with_deadline(session.device_info, 60, f"device {session.name}")
            if bool(info.get("emulated")) if info else ep.emulated:
                if storing:
                    raise EmulatedMeasurement(
                        f"device {session.name} is emulated: its latencies mean nothing and are never stored")
                raise HwfaceError(f"device {session.name} is emulated: per-kernel latencies would mean nothing")
            check_architecture(plan.art_path, session, info)
            done = [0]

            def tick(name: str) -> None:
                done[0] += 1
                say(f"kernel {done[0]}/{len(plan.kernel_specs)}: {name}")

            loaded: dict[str, Any] = {}  # a re-measured batch reuses its modules
            timings, kernels_bracket = call_with_deadline(
                lambda: bracketed(session, lambda: time_kernels(
                    session, plan.lib_path, plan.kernel_specs, repeat, min_repeat_ms, progress=tick, loaded=loaded)),
                timeout_s, f"timing kernels on {session.name}")
            say("timing the whole artifact")
            e2e, e2e_bracket = call_with_deadline(
                lambda: bracketed(session, lambda: time_artifact(session, plan.art_path, plan.x, e2e_repeat,
                                                                 loaded=loaded)),
                timeout_s, f"running the artifact on {session.name}")
            loaded.clear()
            return DeviceTimings(timings, e2e, kernels_bracket, e2e_bracket, info, session.name, ep.key)
        finally:
            if guard:
                guard.forget(session)  # its handles would keep the session, and the device, busy
            session.sess = None


@dataclass(frozen=True)
class RowMeta:
    """How the rows of a profile are stored: regime, budget, tuning hash, sampling, source name, split."""

    regime: str
    trials_per_kernel: int | None
    tuning_db_hash: str | None
    min_repeat_ms: float
    source: str
    split: str


def profile_result(plan: ProfilePlan, timed: DeviceTimings, spec, meta: RowMeta, guard) -> ProfileResult:
    """One row per kernel call and one measurement per distinct kernel (tuned regime: tuned kernels only)."""
    import tvm

    import hwface
    from hwface.latency.fingerprint import measured_fingerprint
    from hwface.latency.key import layer_key
    from hwface.latency.kernels import kernel_madds
    from hwface.latency.store import Measurement

    rows: list[ProfileRow] = []
    total = sum(timed.kernels[c.kernel].median_us for c in plan.timed_calls)
    measurements = []
    fp = measured_fingerprint(spec, timed.info)
    for c in plan.timed_calls:
        st = timed.kernels[c.kernel]
        k = layer_key(c)
        f = k.fields_dict()
        madds = kernel_madds(c)
        kernel_tuned = c.kernel in plan.scheduled
        rows.append(ProfileRow(
            index=c.index, kernel=c.kernel, layers=c.modules, onnx_ops=list(c.onnx_ops), op=k.op, fused=f["fused"],
            input_shapes=f["input_shapes"], output_shape=f["output_shape"], madds=madds, median_us=st.median_us,
            p10_us=st.p10_us, p90_us=st.p90_us, cv=st.cv, samples=st.samples,
            share=st.median_us / total if total else 0.0, key=k.to_str(), tuned=kernel_tuned))
        if any(m.kernel_name == c.kernel for m in measurements) or (meta.regime == "tuned" and not kernel_tuned):
            continue  # once per kernel; in the tuned regime only kernels a record of the budget applied to
        measurements.append(Measurement(
            key=k, target=spec.name, device_key=timed.key, tvm_version=tvm.__version__,
            hwface_version=hwface.__version__, tuned=kernel_tuned, regime=meta.regime, median_us=st.median_us,
            p10_us=st.p10_us, p90_us=st.p90_us, cv=st.cv, samples=st.samples,
            tuning_db_hash=meta.tuning_db_hash if kernel_tuned else None,
            trials_per_kernel=meta.trials_per_kernel if meta.regime == "tuned" else None,
            device_machine=(timed.info or {}).get("machine"), device_info=timed.info,
            min_repeat_ms=meta.min_repeat_ms, source=meta.source, kernel_name=c.kernel, madds=madds, emulated=False,
            fingerprint=fp, reference=timed.kernels_bracket.to_dict() if timed.kernels_bracket else None,
            split=meta.split))
    e2e = timed.end_to_end
    return ProfileResult(
        model=plan.network.name, target=spec.name, device=timed.device, device_key=timed.key,
        device_info=timed.info, tuned=plan.tuned, tuning_db_hash=meta.tuning_db_hash, rows=rows, end_to_end=e2e,
        kernel_sum_us=total, ratio=total / e2e.median_us if e2e.median_us else float("nan"),
        distinct_kernels=len(plan.names), tuned_kernels=len(plan.scheduled) if plan.tuned else None,
        measurements=measurements, fingerprint=fp.digest(), guard=guard.summary() if guard else None)


def network_measurement(result: ProfileResult, plan: ProfilePlan, timed: DeviceTimings, meta: RowMeta,
                        origin: str | None, arch_spec: dict[str, Any] | None):
    """The network's end-to-end row: its kernels, their sum, the references of both timings."""
    from hwface.latency.store import NetworkMeasurement

    e2e = timed.end_to_end
    return NetworkMeasurement(
        name=meta.source, origin=origin or ("zoo" if plan.network.zoo_model else "onnx"), target=result.target,
        device_key=timed.key, regime=meta.regime, fingerprint=result.fingerprint, split=meta.split,
        kernel_calls=len(plan.timed_calls), kernel_sum_us=result.kernel_sum_us, median_us=e2e.median_us,
        p10_us=e2e.p10_us, p90_us=e2e.p90_us, cv=e2e.cv, samples=e2e.samples, kernels=_kernel_counts(result.rows),
        spec=arch_spec, trials_per_kernel=meta.trials_per_kernel if meta.regime == "tuned" else None,
        tuning_db_hash=meta.tuning_db_hash, madds=sum(r.madds for r in result.rows),
        reference={"kernels": timed.kernels_bracket.to_dict() if timed.kernels_bracket else None,
                   "end_to_end": timed.e2e_bracket.to_dict() if timed.e2e_bracket else None})


def _kernel_counts(rows: list[ProfileRow]) -> list[list]:
    """``[key, calls]`` per distinct key, in order of first call."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.key] = counts.get(r.key, 0) + 1
    return [[k, n] for k, n in counts.items()]


PROFILE_REGIMES = ("zoo", "default", "tuned")


def _check_regime(regime: str, database, trials_per_kernel: int | None) -> None:
    if regime not in PROFILE_REGIMES:
        raise HwfaceError(f"unknown regime {regime!r} (known: {', '.join(PROFILE_REGIMES)})")
    if regime == "default" and database is not None:
        raise HwfaceError("the default regime times TVM's default schedules: give no tuning records")
    if regime == "tuned" and (database is None or not trials_per_kernel):
        raise HwfaceError("the tuned regime needs tuning records and the trials per kernel they were tuned with")
