"""Targets as files: ``targets/<name>.toml`` loaded into a validated :class:`TargetSpec`.

A target file holds the TVM target (a JSON-style dict, as TVM 0.27 takes it), the
host target for GPU targets, how to link a shared object for the device, the RPC
key and the default tracker. Example::

    description = "Android phone, 64-bit ARM CPU (NEON)"
    kind = "cpu"
    rpc_key = "android-arm64"
    tracker = "127.0.0.1:9190"
    cross_compiler = "ndk"

    [target]
    kind = "llvm"
    mtriple = "aarch64-linux-android"
    mattr = ["+neon"]
    num-cores = 4

``"auto"`` as ``mcpu`` or ``num-cores`` is replaced by this machine's CPU and
core count when the file is loaded (the ``host`` target).
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwface import data_dirs
from hwface.errors import HwfaceError

KINDS = ("cpu", "gpu")
REQUIRED = ("description", "kind", "rpc_key", "target")
OPTIONAL = ("tracker", "cross_compiler", "host", "emulated", "device", "api_level")
NDK = "ndk"
NDK_ENV = "TVM_NDK_CC"
DEFAULT_API_LEVEL = 28
# Without the NDK, Android .so files link with LLVM's own tools: a TVM kernel library needs
# no Android libc (its only undefined symbols are memcpy and the TVM runtime's, which the
# process that loads it provides), so -nostdlib links it with no sysroot.
CLANG, LLD = "clang", "ld.lld"


class TargetError(HwfaceError):
    """A target name that does not exist or a malformed target file."""


class CrossCompilerMissing(HwfaceError):
    """The compiler that links shared objects for a target is not installed."""


@dataclass(frozen=True)
class Linker:
    """How the ``.so`` files of a target are linked.

    Attributes
    ----------
    kind : str
        ``"host"`` (this machine's C++ compiler), ``"cross"`` (the target's
        cross compiler), ``"ndk"`` (``$TVM_NDK_CC``) or ``"clang-lld"``
        (clang + lld for Android, no NDK).
    path : str or None
        Compiler executable; None for this machine's own.
    options : tuple of str
        Extra link options (``clang-lld``: the Android triple and API level).
    """

    kind: str
    path: str | None = None
    options: tuple[str, ...] = ()

    def describe(self) -> str:
        """What linked it, as manifests record it (e.g. ``clang-lld: /usr/bin/clang --target=...``)."""
        return " ".join([f"{self.kind}:", self.path or "the host's C++ compiler", *self.options])


def targets_dir() -> Path:
    """Folder holding the target files: ``$HWFACE_TARGETS``, else the shipped ones (:mod:`hwface.data_dirs`)."""
    return data_dirs.override("targets") or data_dirs.shipped_dir("targets")


@dataclass(frozen=True)
class TargetSpec:
    """A validated target file.

    Attributes
    ----------
    name : str
        File stem, e.g. ``"linux-arm64"``.
    description : str
    kind : str
        ``"cpu"`` or ``"gpu"``.
    target : dict
        TVM target dict with ``"auto"`` values resolved.
    host : dict or None
        Host target dict (GPU targets: the CPU that runs the host code).
    cross_compiler : str or None
        Executable that links ``.so`` files for the device, ``"ndk"`` (use
        ``$TVM_NDK_CC``), or None for this machine's own compiler.
    rpc_key : str
        Key the device's RPC server registers under at the tracker.
    tracker : str or None
        Default tracker ``HOST:PORT``; None means hwface starts an embedded one
        (host target only).
    emulated : bool
        True for a device under emulation (timings mean nothing there).
    api_level : int or None
        Android API level the ``.so`` is linked for (Android targets; default 28).
    path : Path
    """

    name: str
    description: str
    kind: str
    target: dict[str, Any]
    rpc_key: str
    host: dict[str, Any] | None = None
    cross_compiler: str | None = None
    tracker: str | None = None
    emulated: bool = False
    api_level: int | None = None
    path: Path = field(default=Path(), compare=False)

    @property
    def is_host(self) -> bool:
        """True when binaries built for this target run on this machine."""
        return self.cross_compiler is None and "mtriple" not in self.target

    def tvm_target(self):
        """The ``tvm.target.Target`` (with its host for GPU targets)."""
        import tvm

        if self.host is not None:
            return tvm.target.Target(self.target, host=self.host)
        return tvm.target.Target(self.target)

    def triple(self) -> str:
        """LLVM triple of the code that runs on the device CPU."""
        cpu = self.host if self.host is not None else self.target
        return str(cpu.get("mtriple", "x86_64-linux-gnu"))

    def linker(self) -> Linker:
        """How ``.so`` files for the device are linked (checked: the compiler exists).

        Android targets (``cross_compiler = "ndk"``) link with ``$TVM_NDK_CC``
        when it is set, else with clang + lld for the target's API level.

        Raises
        ------
        CrossCompilerMissing
            With what to install or set, when it is not found.
        """
        if self.cross_compiler is None:
            return Linker("host")
        if self.cross_compiler == NDK:
            return self._android_linker()
        found = shutil.which(self.cross_compiler)
        if found is None:
            hint = {
                "aarch64-linux-gnu-g++": "apt-get install g++-aarch64-linux-gnu (or `make sysdeps`)",
            }.get(self.cross_compiler, "install it and put it on PATH")
            raise CrossCompilerMissing(
                f"target {self.name} needs the cross compiler {self.cross_compiler}, not found on PATH: {hint}"
            )
        return Linker("cross", found)

    def _android_linker(self) -> Linker:
        cc = os.environ.get(NDK_ENV)
        if cc:
            if not Path(cc).exists():
                raise CrossCompilerMissing(f"{NDK_ENV}={cc} does not exist: set it to the NDK's clang++ "
                                           f"or unset it to link {self.name} with clang + lld")
            return Linker(NDK, cc)
        clang, lld = shutil.which(CLANG), shutil.which(LLD)
        if clang is None or lld is None:
            raise CrossCompilerMissing(
                f"target {self.name} links with clang + lld when {NDK_ENV} is unset, and "
                f"{CLANG if clang is None else LLD} is not on PATH: apt-get install clang lld (or `make sysdeps`), "
                f"or set {NDK_ENV} to the Android NDK's clang++"
            )
        triple = f"{self.triple()}{self.api_level or DEFAULT_API_LEVEL}"
        return Linker("clang-lld", clang, (f"--target={triple}", "-fuse-ld=lld", "-nostdlib"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (as ``hwface targets --format json`` prints it)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "rpc_key": self.rpc_key,
            "cross_compiler": self.cross_compiler,
            "tracker": self.tracker,
            "emulated": self.emulated,
            "api_level": self.api_level,
            "description": self.description,
            "target": self.target,
            "host": self.host,
        }


def list_targets() -> list[str]:
    """Names of the target files, sorted."""
    return sorted(p.stem for p in targets_dir().glob("*.toml"))


def target_for_key(key: str) -> TargetSpec:
    """The shipped target whose ``rpc_key`` is ``key``; raises :class:`TargetError` when none is."""
    for name in list_targets():
        spec = load_target(name)
        if spec.rpc_key == key:
            return spec
    keys = sorted({load_target(n).rpc_key for n in list_targets()})
    raise TargetError(f"no target file has rpc_key {key!r} (known: {', '.join(keys)}); pass --tracker HOST:PORT")


def load_target(name_or_path: str | os.PathLike) -> TargetSpec:
    """Load and validate a target by name (``targets/<name>.toml``) or by file path.

    Raises
    ------
    TargetError
        Unknown name, unreadable TOML, or a missing or malformed field (the
        message names the file and the field).
    """
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = targets_dir() / f"{name_or_path}.toml"
        if not p.exists():
            import difflib

            names = list_targets()
            close = difflib.get_close_matches(str(name_or_path), names, n=3, cutoff=0.4)
            hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(names)}"
            raise TargetError(f"unknown target {str(name_or_path)!r}; {hint}")
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TargetError(f"{p}: cannot read target file: {exc}") from None
    return _validate(p, data)


def _validate(path: Path, data: dict[str, Any]) -> TargetSpec:
    def bad(field_name: str, why: str) -> TargetError:
        return TargetError(f"{path}: field {field_name!r} {why}")

    for key in REQUIRED:
        if key not in data:
            raise bad(key, "is missing")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise bad(unknown[0], f"is not a target field (known: {', '.join(REQUIRED + OPTIONAL)})")
    for key in ("description", "kind", "rpc_key"):
        if not isinstance(data[key], str) or not data[key]:
            raise bad(key, "must be a non-empty string")
    if data["kind"] not in KINDS:
        raise bad("kind", f"must be one of {', '.join(KINDS)}, got {data['kind']!r}")
    if not isinstance(data["target"], dict) or "kind" not in data["target"]:
        raise bad("target", "must be a table with at least a 'kind' (e.g. llvm, opencl)")
    host = data.get("host")
    if host is not None and (not isinstance(host, dict) or "kind" not in host):
        raise bad("host", "must be a table with at least a 'kind'")
    if data["kind"] == "gpu" and host is None:
        raise bad("host", "is required for a gpu target (the CPU running the host code)")
    tracker = data.get("tracker") or None
    if tracker is not None:
        _check_tracker(tracker, lambda why: bad("tracker", why))
    cross = data.get("cross_compiler") or None
    if cross is not None and not isinstance(cross, str):
        raise bad("cross_compiler", "must be a string (an executable name, or 'ndk')")
    emulated = data.get("emulated", False)
    if not isinstance(emulated, bool):
        raise bad("emulated", "must be true or false")
    api_level = data.get("api_level")
    if api_level is not None and (isinstance(api_level, bool) or not isinstance(api_level, int) or api_level < 21):
        raise bad("api_level", f"must be an Android API level, an integer of at least 21, got {api_level!r}")
    target = _resolve_auto(dict(data["target"]))
    try:
        import tvm

        tvm.target.Target(target, host=host) if host else tvm.target.Target(target)
    except Exception as exc:  # TVM raises its own error types for bad target dicts
        raise bad("target", f"is not a valid TVM target: {str(exc).splitlines()[0]}") from None
    return TargetSpec(
        name=path.stem,
        description=data["description"],
        kind=data["kind"],
        target=target,
        host=_resolve_auto(dict(host)) if host else None,
        cross_compiler=cross,
        rpc_key=data["rpc_key"],
        tracker=tracker,
        emulated=emulated,
        api_level=api_level,
        path=path,
    )


def _check_tracker(value: Any, bad) -> None:
    if not isinstance(value, str) or value.count(":") != 1:
        raise bad("must be HOST:PORT")
    port = value.rsplit(":", 1)[1]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise bad(f"has an invalid port {port!r}")


def parse_tracker(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` into (host, port); raises :class:`HwfaceError` when malformed."""
    _check_tracker(value, lambda why: HwfaceError(f"tracker {value!r} {why}"))
    host, port = value.rsplit(":", 1)
    return host, int(port)


def _resolve_auto(target: dict[str, Any]) -> dict[str, Any]:
    if target.get("mcpu") == "auto":
        from tvm.target import codegen

        target["mcpu"] = codegen.llvm_get_system_cpu()
    if target.get("num-cores") == "auto":
        target["num-cores"] = host_cores()
    return target


def host_cores() -> int:
    """CPUs this process may run on (its affinity mask; elsewhere than Linux, the CPU count), at least 1.

    The one usable-core count: the host target's ``num-cores``, TVM's runtime
    threads (:mod:`hwface.measure.threads`) and the builder's workers.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
