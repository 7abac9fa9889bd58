"""One run of the kernel sampler as named steps: plan a batch, build it, time it on a device, store it.

:func:`hwface.latency.sampler.sample` checks its arguments, opens the store and
the device, and hands over to :class:`SamplerRun`, which holds what a run
shares between its steps (what is planned and measured, the device sessions,
the report) instead of closures over mutable locals.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwface.latency.sampler import (BuiltBatch, SampleConfig, SampleReport, build_batch, neighbours, prior_stream,
                                    worst_predicted)
from hwface.tune.kernel import tune_kernels


@dataclass(frozen=True)
class SamplerSettings:
    """What a run samples and how it measures (see :func:`hwface.latency.sampler.sample`)."""

    kinds: tuple[str, ...]
    n: int
    regime: str
    seed: int
    batch: int
    adaptive_fraction: float
    repeat: int
    min_repeat_ms: float
    trials_per_kernel: int


class SamplerRun:
    """A sampling run on one device endpoint: its steps share the planned and measured configurations."""

    def __init__(self, spec, ep, devices: int, store, settings: SamplerSettings, today: str, report: SampleReport,
                 done_ids: set[str], guard, say: Callable[[int, int, str], None]):
        self.spec, self.ep, self.devices, self.store, self.cfg = spec, ep, devices, store, settings
        self.report, self.done_ids, self.guard, self._say = report, done_ids, guard, say
        self.lock = threading.Lock()
        self.local = threading.local()
        self.sessions: list = []
        self.measured: list[tuple[SampleConfig, float]] = []
        for cfg_dict, lat in store.sampled_configs(spec.name, settings.regime, ep.key, today):
            kind = cfg_dict.pop("kind")  # previously measured configurations feed the adaptive model
            self.measured.append((SampleConfig.make(kind, **cfg_dict), lat))
        self.stream = prior_stream(tuple(settings.kinds), settings.seed)
        self.rng = np.random.default_rng(settings.seed + 1)
        self.planned: set[str] = set(done_ids)
        self.n_prior_total = settings.n - int(round(settings.n * settings.adaptive_fraction))

    # -- progress -------------------------------------------------------------------
    @property
    def done(self) -> int:
        return len(self.done_ids) + self.report.measured_configs + self.report.failed_configs

    def say(self, msg: str) -> None:
        self._say(self.done, self.cfg.n, msg)

    # -- plan -----------------------------------------------------------------------
    def _take(self, cfg: SampleConfig, out: list[SampleConfig], counter: str) -> None:
        if cfg.config_id not in self.planned:
            self.planned.add(cfg.config_id)
            out.append(cfg)
            setattr(self.report, counter, getattr(self.report, counter) + 1)

    def next_batch(self) -> list[SampleConfig]:
        """The next configurations to measure: from the prior first, then neighbours of the worst predicted."""
        out: list[SampleConfig] = []
        total_planned = len(self.planned)
        want = min(self.cfg.batch, self.cfg.n - total_planned)
        if want <= 0:
            return out
        if total_planned < self.n_prior_total:
            while len(out) < min(want, self.n_prior_total - total_planned):
                self._take(next(self.stream), out, "prior_configs")
            return out
        for base in worst_predicted(list(self.measured), top=max(4, want)):
            for cfg in neighbours(base, self.rng):
                if cfg.kind in self.cfg.kinds and len(out) < want:
                    self._take(cfg, out, "adaptive_configs")
        while len(out) < want:  # the model found nothing new: back to the prior
            self._take(next(self.stream), out, "prior_configs")
        return out

    # -- build ----------------------------------------------------------------------
    def tune(self, funcs: dict[str, Any]) -> dict[str, Any]:
        """The tuned regime's step before building: each kernel tuned on the device."""
        self.say(f"tuning {len(funcs)} kernels, {self.cfg.trials_per_kernel} trials each")
        return tune_kernels(funcs, self.spec, self.ep, self.cfg.trials_per_kernel, seed=self.cfg.seed)

    def build(self, configs: list[SampleConfig], work: Path, tag: str) -> BuiltBatch:
        return build_batch(configs, self.spec, work, tag, self.tune if self.cfg.regime == "tuned" else None)

    # -- measure --------------------------------------------------------------------
    def session(self):
        """This thread's session on a device under the key, and what the device says about itself."""
        from hwface.latency.store import EmulatedMeasurement
        from hwface.rpc.devices import connect
        from hwface.rpc.remote import call_with_deadline

        local = self.local
        if getattr(local, "s", None) is None:
            local.s = connect(self.ep.tracker, self.ep.key, timeout_s=300, session_timeout_s=0)
            local.info = call_with_deadline(local.s.device_info, 60, f"device {local.s.name}")
            with self.lock:
                self.sessions.append(local.s)
            if local.info and local.info.get("emulated"):
                raise EmulatedMeasurement(
                    f"device {local.s.name} is emulated: its latencies mean nothing and are never stored")
        return local.s, local.info

    def time(self, built: BuiltBatch) -> tuple[BuiltBatch, dict, dict | None, str, Any]:
        """Time a built batch's kernels on a device, under the drift guard."""
        from hwface.measure.kernel_timing import time_kernels
        from hwface.rpc.remote import call_with_deadline

        s, info = self.session()
        timings, bracket = {}, None
        if built.so_path is not None:
            loaded: dict[str, Any] = {}  # a re-measured batch reuses its library

            def timed() -> dict:
                return time_kernels(s, built.so_path, [k for _, k, _ in built.kernels], self.cfg.repeat,
                                    self.cfg.min_repeat_ms, loaded=loaded)

            def guarded():
                if not self.guard:
                    return timed(), None
                return self.guard.run(s, timed, on_redo=self.say)

            timings, bracket = call_with_deadline(guarded, 1800, f"timing a batch on {s.name}")
        if self.cfg.regime == "tuned":  # free the device: the next batch is tuned on it first
            if self.guard:
                self.guard.forget(s)
            s.sess, self.local.s = None, None
        return built, timings, info, s.name, bracket

    # -- store ----------------------------------------------------------------------
    def _measurement(self, cfg, ks, call, st, built: BuiltBatch, info, device: str, fp, reference):
        import tvm

        import hwface
        from hwface.latency.kernels import kernel_madds
        from hwface.latency.key import layer_key
        from hwface.latency.store import Measurement

        tuned = self.cfg.regime == "tuned"
        return Measurement(
            key=layer_key(call), target=self.spec.name, device_key=self.ep.key, tvm_version=tvm.__version__,
            hwface_version=hwface.__version__, tuned=tuned, regime=self.cfg.regime,
            median_us=st.median_us, p10_us=st.p10_us, p90_us=st.p90_us, cv=st.cv, samples=st.samples,
            trials_per_kernel=self.cfg.trials_per_kernel if tuned else None,
            tuning_db_hash=built.schedules.get(ks.name),
            device_machine=(info or {}).get("machine"), device_info={**(info or {}), "address": device},
            min_repeat_ms=self.cfg.min_repeat_ms, source=f"sample:{cfg.config_id}", kernel_name=call.kernel,
            madds=kernel_madds(call), fingerprint=fp, reference=reference)

    def _marks(self, built: BuiltBatch, per_cfg: dict[str, float]) -> list[tuple]:
        """The ``sample_configs`` marks of a batch: done (with its latency) or failed (with why)."""
        spec, regime, key = self.spec.name, self.cfg.regime, self.ep.key
        marks = []
        for cfg in built.configs:
            cid = cfg.config_id
            if cid in built.failed:
                marks.append((cid, spec, regime, key, cfg.kind, cfg.to_dict(), "failed", 0, built.failed[cid]))
            else:
                k = sum(1 for c, _, _ in built.kernels if c.config_id == cid)
                marks.append((cid, spec, regime, key, cfg.kind, {**cfg.to_dict(), "latency_us": per_cfg.get(cid)},
                              "done", k, None))
                self.measured.append((cfg, per_cfg.get(cid, 0.0)))
        return marks

    def store_batch(self, built: BuiltBatch, timings: dict, info: dict | None, device: str, bracket) -> None:
        """Store a timed batch's kernel rows and mark its configurations."""
        from hwface.latency.fingerprint import measured_fingerprint

        fp = measured_fingerprint(self.spec, info)
        reference = bracket.to_dict() if bracket is not None else None
        rows, per_cfg = [], {}
        for cfg, ks, call in built.kernels:
            st = timings[ks.name]
            per_cfg[cfg.config_id] = per_cfg.get(cfg.config_id, 0.0) + st.median_us
            rows.append(self._measurement(cfg, ks, call, st, built, info, device, fp, reference))
        marks = self._marks(built, per_cfg)
        report = self.report
        with self.lock:
            report.stored_kernels += self.store.add(rows)
            self.store.mark_configs(marks, fp.digest())
            if self.guard:
                report.redone_batches, report.drifted_batches = self.guard.redone, self.guard.drifted
            report.measured_configs += len(built.configs) - len(built.failed)
            report.failed_configs += len(built.failed)
            report.errors.extend(f"{cid}: {e}" for cid, e in built.failed.items())
            self.say(f"{report.stored_kernels} kernels stored")

    # -- the loop -------------------------------------------------------------------
    def measure_all(self, work: Path) -> SampleReport:
        """Plan, build, time and store batches until ``n`` configurations are done; then free the devices."""
        in_flight_max = 1 if self.spec.is_host else self.devices  # on the host, never compile while timing
        with ThreadPoolExecutor(max_workers=self.devices) as pool:
            futures: set = set()
            tag = 0
            while True:
                while len(futures) < in_flight_max:
                    configs = self.next_batch()
                    if not configs:
                        break
                    tag += 1
                    futures.add(pool.submit(self.time, self.build(configs, work, f"b{tag}")))
                if not futures:
                    break
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                for fut in finished:
                    self.store_batch(*fut.result())
        for s in self.sessions:
            if self.guard:
                self.guard.forget(s)
            s.sess = None
        return self.report
