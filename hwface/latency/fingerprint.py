"""The pipeline fingerprint: which pipeline produced a measurement, computed in one place.

A latency is only meaningful for the code that ran: the same layer key timed
with another TVM, another lowering (hwface's own legalizations, see
:data:`hwface.compile.pipeline.LOWERING_VERSION`), another TVM target (mcpu,
mattr, core count) or another thread count is another program. Every
measurement stores the digest of its :class:`Fingerprint`.

The target and its resolved TVM target name the *device* (for ``host``, the
CPU this machine has: ``mcpu`` is detected at load time, so an Intel and an AMD
box are two devices). Against today's fingerprint a row is

- *current*: same fingerprint; it trains, evaluates and answers by default;
- *stale*: same device, another pipeline (TVM, lowering, threads) or a
  device it never recorded; kept, archived by ``hwface db prune --stale``,
  never trains or answers;
- *another device's*: measured on another CPU or board; kept as it is (it is
  current for that device) and used only when asked for by its digest
  (``--fingerprint``).

The tuning budget and the regime are not part of the fingerprint: they are
columns of their own (``regime``, ``trials_per_kernel``) and every reader filters
on them too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

UNRECORDED = "unrecorded"


@dataclass(frozen=True)
class Fingerprint:
    """What decides the code that ran on the device.

    Attributes
    ----------
    target : str
        Target file name (``host``, ``android-arm64``, ...).
    tvm_target : str
        Canonical JSON of the TVM target dict (and host dict) with ``auto`` resolved.
    tvm_version : str
    lowering : str
        :data:`hwface.compile.pipeline.LOWERING_VERSION` of the build.
    runtime_threads : int
        Threads of TVM's runtime on the device while it timed (0 when unknown).
    """

    target: str
    tvm_target: str
    tvm_version: str
    lowering: str
    runtime_threads: int

    def digest(self) -> str:
        """Short stable hash (16 hex digits) of all fields: what rows store."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> "Fingerprint":
        return cls(str(fields["target"]), str(fields["tvm_target"]), str(fields["tvm_version"]),
                   str(fields["lowering"]), int(fields["runtime_threads"]))

    def device(self) -> str:
        """Where the code ran, in a few words: ``llvm mcpu=znver3 2 cores`` (``unrecorded`` for legacy rows)."""
        if self.tvm_target == UNRECORDED:
            return UNRECORDED
        target = json.loads(self.tvm_target).get("target") or {}
        parts = [str(target.get("kind", "?"))]
        parts += [f"{k}={target[k]}" for k in ("mtriple", "mcpu", "mattr", "arch") if target.get(k)]
        if target.get("num-cores"):
            parts.append(f"{target['num-cores']} cores")
        return " ".join(parts)

    def relation_to(self, today: "Fingerprint") -> str:
        """``current``, ``stale`` (same device, another pipeline) or ``other device``."""
        if self == today:
            return "current"
        same_device = self.target == today.target and self.tvm_target in (today.tvm_target, UNRECORDED)
        return "stale" if same_device else "other device"

    def describe(self) -> str:
        """One line: ``host (llvm mcpu=znver3 2 cores), TVM 0.27.0.post1, lowering 0.4.0, 2 thread(s)``."""
        return (f"{self.target} ({self.device()}), TVM {self.tvm_version}, lowering {self.lowering}, "
                f"{self.runtime_threads} thread(s)")


def tvm_target_text(spec) -> str:
    """Canonical JSON of a TargetSpec's TVM target and host dicts."""
    return json.dumps({"target": spec.target, "host": spec.host}, sort_keys=True, default=str)


def measured_fingerprint(spec, device_info: dict[str, Any] | None) -> Fingerprint:
    """The fingerprint of a measurement taken now with ``spec`` on a device reporting ``device_info``.

    ``runtime_threads`` comes from the device's own report (hwface's device
    server says it); a plain TVM server reports nothing and gives 0.
    """
    import tvm

    from hwface.compile.pipeline import LOWERING_VERSION

    threads = int((device_info or {}).get("runtime_threads") or 0)
    return Fingerprint(spec.name, tvm_target_text(spec), tvm.__version__, LOWERING_VERSION, threads)


def expected_threads(spec) -> int:
    """Threads today's pipeline times with on ``spec``'s device.

    The host's device server runs every usable core
    (:func:`hwface.measure.threads.usable_cores`); another device's count is its
    target's ``num-cores`` (0 when the target does not say).
    """
    if spec.is_host:
        from hwface.measure.threads import usable_cores

        return usable_cores()
    cores = (spec.host or spec.target).get("num-cores", spec.target.get("num-cores"))
    try:
        return int(cores)
    except (TypeError, ValueError):
        return 0


def current_fingerprint(spec, runtime_threads: int | None = None) -> Fingerprint:
    """Today's fingerprint for ``spec``: what current rows must carry.

    Parameters
    ----------
    spec : TargetSpec
    runtime_threads : int, optional
        Default :func:`expected_threads`.
    """
    import tvm

    from hwface.compile.pipeline import LOWERING_VERSION

    threads = expected_threads(spec) if runtime_threads is None else int(runtime_threads)
    return Fingerprint(spec.name, tvm_target_text(spec), tvm.__version__, LOWERING_VERSION, threads)


def legacy_fingerprint(target: str, tvm_version: str, hwface_version: str,
                       device_info: dict[str, Any] | None) -> Fingerprint:
    """The fingerprint of a row stored before fingerprints existed (schema 0).

    Those rows did not record their TVM target, so it is :data:`UNRECORDED` and
    they can never be current; their lowering is the hwface version that
    measured them (it was bumped with every lowering change).
    """
    threads = int((device_info or {}).get("runtime_threads") or 0)
    return Fingerprint(target, UNRECORDED, tvm_version, hwface_version, threads)
