"""An emulated AArch64 device: a Debian arm64 root with TVM's runtime, run under user-mode QEMU.

:func:`prepare_root` builds, once per machine, under ``<cache>/arm64-qemu/``:

- ``root/``: Debian bookworm arm64 (Python 3.11) from ``debootstrap --foreign``, every
  downloaded package unpacked (no maintainer scripts run: nothing here is executed
  natively, so binfmt_misc and chroot are not needed);
- ``root/opt/hwface/site``: the AArch64 wheels of apache-tvm / apache-tvm-ffi (the
  project's pins) and their runtime needs, from PyPI (``pip download --platform``),
  installed with ``pip install --target``;
- ``bin/python3``: a wrapper running the root's Python under ``qemu-aarch64-static -L
  root -0 <wrapper>``; ``-0`` makes the wrapper the guest's ``sys.executable``, so the
  popen workers that the TVM RPC server launches are emulated too.

:func:`start_emulated_server` starts ``tvm.exec.rpc_server`` (through hwface's device
launcher) under that wrapper, runtime-only (``TVM_USE_RUNTIME_LIB=1``, with
``libtvm_runtime_extra.so`` loaded, which MetaSchedule's runner needs).

Timings on an emulated device mean nothing: callers must not report or store them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from hwface.errors import HwfaceError
from hwface.rpc import procs

SUITE = "bookworm"  # Debian release whose python3.11 matches the cp311 tvm-ffi wheel
ARCH = "arm64"
PY_VERSION = "3.11"
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
TVM_PINS = ("apache-tvm==0.27.0.post1", "apache-tvm-ffi==0.1.14.post1")
# Runtime needs of the tvm package and of its RPC server (popen worker).
RUNTIME_DEPS = ("numpy", "ml_dtypes", "typing_extensions", "cloudpickle", "psutil")
# Dropped from the root: the 250 MB compiler (the device runs runtime-only) and CUDA.
DROP_LIBS = ("tvm/lib/libtvm_compiler.so", "tvm/lib/libtvm_runtime_cuda.so")
DEBIAN_PACKAGES = ("python3.11", "libpython3.11-stdlib", "ca-certificates")
DEFAULT_KEY = "arm64-qemu"
PREPARE_TIMEOUT_S = 1800
STAMP = ".hwface-ready.json"


class EmulationError(HwfaceError):
    """The emulated device cannot be prepared or started."""


def cache_dir() -> Path:
    """hwface's cache: ``$HWFACE_CACHE``, else ``$XDG_CACHE_HOME/hwface``, else ``~/.cache/hwface``."""
    env = os.environ.get("HWFACE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "hwface"


@dataclass(frozen=True)
class EmulatedRoot:
    """A prepared emulated-device root.

    Attributes
    ----------
    base : Path
        ``<cache>/arm64-qemu``.
    """

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def site(self) -> Path:
        return self.root / "opt" / "hwface" / "site"

    @property
    def python(self) -> Path:
        """The wrapper that runs the root's Python under QEMU."""
        return self.base / "bin" / "python3"

    @property
    def runtime_extra(self) -> Path:
        return self.site / "tvm" / "lib" / "libtvm_runtime_extra.so"

    def env(self) -> dict[str, str]:
        """Environment for a process run with :attr:`python`."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "LD_LIBRARY_PATH", "LD_PRELOAD")}
        env.update(PYTHONPATH=str(self.site), PYTHONNOUSERSITE="1", TVM_USE_RUNTIME_LIB="1",
                   QEMU_LD_PREFIX=str(self.root))
        return env

    def ready(self) -> bool:
        return (self.base / STAMP).exists() and self.python.exists()

    def info(self) -> dict:
        """What the stamp file recorded at preparation (pins, size, seconds taken)."""
        return json.loads((self.base / STAMP).read_text())


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive URL this machine's apt uses (``$HWFACE_DEBIAN_MIRROR`` overrides).

    Reads ``sources.list`` (one-line format) and ``sources.list.d/*.list`` /
    ``*.sources`` (deb822), keeping ``deb`` entries with the ``main`` component
    whose suites are not security suites.

    Raises
    ------
    EmulationError
        When no such entry exists.
    """
    env = os.environ.get("HWFACE_DEBIAN_MIRROR")
    if env:
        return env.rstrip("/")
    entries: list[tuple[str, list[str], list[str]]] = []  # (uri, suites, components)
    files = [apt_dir / "sources.list"] + sorted((apt_dir / "sources.list.d").glob("*"))
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
                if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    entries.append((uri, fields.get("suites", "").split(), fields.get("components", "").split()))
        elif f.name.endswith(".list") or f.name == "sources.list":
            for line in text.splitlines():
                line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
                if len(line) >= 4 and line[0] == "deb":
                    entries.append((line[1], [line[2]], line[3:]))
    for uri, suites, comps in entries:
        if not uri.startswith(("http://", "https://", "file:/")) or "main" not in comps:
            continue
        if all("security" in s for s in suites) or "security" in uri:
            continue
        return uri.rstrip("/")
    raise EmulationError(
        f"no Debian mirror with 'main' found in {apt_dir}/sources.list or sources.list.d; "
        "set HWFACE_DEBIAN_MIRROR to a Debian archive URL"
    )


def _need_tools() -> dict[str, str]:
    found = {}
    for tool, pkg in (("debootstrap", "debootstrap"), ("qemu-aarch64-static", "qemu-user-static"),
                      ("dpkg-deb", "dpkg"), ("tar", "tar")):
        path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
        if path is None:
            raise EmulationError(f"the emulated device needs {tool}: apt-get install {pkg} (or `make sysdeps`)")
        found[tool] = path
    return found


def _run(cmd: list[str], what: str, timeout_s: float, log: Callable[[str], None], **kw) -> None:
    log(f"[emulate] {what}")
    try:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=timeout_s, start_new_session=True, **kw)
    except subprocess.TimeoutExpired:
        raise EmulationError(f"{what}: timed out after {timeout_s:g} s") from None
    if res.returncode != 0:
        tail = "\n".join(res.stdout.strip().splitlines()[-12:])
        raise EmulationError(f"{what} failed (exit {res.returncode}):\n{tail}")


def _host_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _requirements() -> list[str]:
    reqs = list(TVM_PINS)
    for dist in RUNTIME_DEPS:  # same versions as this venv, so both ends agree
        v = _host_version(dist)
        reqs.append(f"{dist}=={v}" if v else dist)
    return reqs


def _wheel_for(wheels: Path, req: str) -> Path:
    from packaging.utils import canonicalize_name, parse_wheel_filename

    name, _, version = req.partition("==")
    for whl in sorted(wheels.glob("*.whl"), reverse=True):
        wname, wver, _, tags = parse_wheel_filename(whl.name)
        if wname != canonicalize_name(name) or (version and str(wver) != version):
            continue
        if any(t.platform == "any" or "aarch64" in t.platform for t in tags):
            return whl
    raise EmulationError(f"pip download left no aarch64 wheel for {req} in {wheels}")


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def prepare_root(cache: Path | None = None, log: Callable[[str], None] | None = None,
                 force: bool = False) -> EmulatedRoot:
    """Build the emulated AArch64 root once; later calls return it at once.

    Parameters
    ----------
    cache : Path, optional
        Cache directory (default :func:`cache_dir`); the root goes to ``<cache>/arm64-qemu``.
    log : callable, optional
        Receives one line per step (default: print to stderr).
    force : bool
        Rebuild even when a prepared root exists.

    Returns
    -------
    EmulatedRoot

    Raises
    ------
    EmulationError
        A missing tool (debootstrap, qemu-user-static), no root privileges for
        debootstrap, no mirror, a failed download, or a root whose Python cannot
        import TVM.

    Notes
    -----
    Takes about a minute with a fast mirror and about 0.6 GB of disk (the TVM
    compiler library is left out: the device runs the runtime only). Concurrent
    callers wait on a lock file and share the result.
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    base = (cache or cache_dir()) / "arm64-qemu"
    er = EmulatedRoot(base)
    if er.ready() and not force:
        return er
    with _lock(base.parent / "arm64-qemu.lock"):
        if er.ready() and not force:
            return er
        t0 = time.monotonic()
        tools = _need_tools()
        sudo = _sudo()
        mirror = debian_mirror()
        _remove(base, sudo)
        tmp = base.parent / f"arm64-qemu.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        root = tmp / "root"
        root.mkdir(parents=True)
        _debootstrap(root, tools, sudo, mirror, log)
        reqs = _install_wheels(base.parent / "wheels-aarch64", root / "opt" / "hwface" / "site", log)
        final = EmulatedRoot(base)
        _write_wrapper(tmp / "bin", final, tools["qemu-aarch64-static"])
        tmp.rename(base)
        versions = _check_root(base, final, log)
        size = int(subprocess.run(["du", "-sb", str(base)], capture_output=True, text=True, timeout=120)
                   .stdout.split()[0])
        info = {"suite": SUITE, "arch": ARCH, "mirror": mirror, "requirements": reqs,
                "tvm_version": versions[0], "tvm_ffi_version": versions[1], "size_bytes": size,
                "prepare_s": round(time.monotonic() - t0, 1), "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (base / STAMP).write_text(json.dumps(info, indent=2) + "\n")
        log(f"[emulate] ready: {base} ({size / 1e9:.2f} GB, {info['prepare_s']:.0f} s)")
        return final


def _sudo() -> list[str]:
    """The prefix that runs debootstrap as root: none for root, ``sudo -n`` otherwise."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") is None:
        raise EmulationError("debootstrap needs root: run as root or install sudo")
    return ["sudo", "-n"]


def _remove(path: Path, sudo: list[str]) -> None:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
        if path.exists() and sudo:
            subprocess.run(sudo + ["rm", "-rf", str(path)], timeout=300, check=False)


def _debootstrap(root: Path, tools: dict[str, str], sudo: list[str], mirror: str, log) -> None:
    """A minimal Debian AArch64 root with Python in ``root``: debootstrap's first stage, then every package unpacked."""
    _run(sudo + [tools["debootstrap"], "--foreign", f"--arch={ARCH}", "--variant=minbase",
                 f"--include={','.join(DEBIAN_PACKAGES)}", SUITE, str(root), mirror],
         f"debootstrap {SUITE} {ARCH} from {mirror}", PREPARE_TIMEOUT_S, log)
    if sudo:
        subprocess.run(sudo + ["chown", "-R", f"{os.getuid()}:{os.getgid()}", str(root)], timeout=300, check=True)
    debs = sorted((root / "var" / "cache" / "apt" / "archives").glob("*.deb"))
    log(f"[emulate] unpacking {len(debs)} Debian packages")
    for deb in debs:  # the first stage unpacked only 'required'; unpack everything
        fsys = subprocess.Popen([tools["dpkg-deb"], "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        res = subprocess.run([tools["tar"], "-x", "-k", "--keep-directory-symlink", "--no-same-owner",
                              "-C", str(root)], stdin=fsys.stdout, stderr=subprocess.PIPE, timeout=300)
        fsys.stdout.close()
        fsys.wait(timeout=60)
        # -k reports files that the first stage already unpacked: not an error
        if fsys.returncode != 0:
            raise EmulationError(f"cannot unpack {deb.name}: {res.stderr.decode(errors='replace')[-300:]}")
        deb.unlink()
    if not (root / "usr" / "bin" / f"python{PY_VERSION}").exists():
        raise EmulationError(f"debootstrap produced no python{PY_VERSION} in {root}")


def _install_wheels(wheels: Path, site: Path, log) -> list[str]:
    """Download the aarch64 wheels of the device's requirements (cached in ``wheels``) into ``site``; the requirements."""
    wheels.mkdir(parents=True, exist_ok=True)
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    pyv = ["--python-version", PY_VERSION, "--implementation", "cp", "--abi", "cp311", "--only-binary=:all:"]
    reqs = _requirements()
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), *plat, *pyv, *reqs],
         f"pip download (aarch64): {' '.join(reqs)}", PREPARE_TIMEOUT_S, log)
    files = [str(_wheel_for(wheels, req)) for req in reqs]
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
          *plat, *pyv, *files], "pip install --target (aarch64 wheels)", PREPARE_TIMEOUT_S, log)
    for rel in DROP_LIBS:
        (site / rel).unlink(missing_ok=True)
    return reqs


def _write_wrapper(bin_dir: Path, final: EmulatedRoot, qemu: str) -> None:
    """``bin/python3``: the emulated device's Python under user-mode QEMU, at the root's final place."""
    bin_dir.mkdir()
    wrapper = bin_dir / "python3"
    wrapper.write_text(
        "#!/bin/sh\n"
        "# Runs the emulated device's Python under user-mode QEMU (written by hwface device emulate).\n"
        f'exec {qemu} -L {final.root} -0 {final.python} {final.root}/usr/bin/python{PY_VERSION} "$@"\n'
    )
    wrapper.chmod(0o755)


def _check_root(base: Path, final: EmulatedRoot, log) -> tuple[str, str]:
    """Import TVM in the emulated Python once (which also writes the .pyc files); its TVM and TVM FFI versions.

    A root that fails is removed.
    """
    log("[emulate] checking that the emulated Python imports tvm (compiles .pyc once)")
    try:
        res = subprocess.run(
            [str(final.python), "-c",
             "import platform, sys, tvm, tvm_ffi, numpy, cloudpickle, psutil, tvm.rpc;"
             "print(platform.machine(), sys.executable, tvm.__version__, tvm_ffi.__version__)"],
            env=final.env(), capture_output=True, text=True, timeout=600, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise EmulationError("the emulated Python did not import tvm within 600 s") from None
    fields = res.stdout.split()
    if res.returncode != 0 or not fields or fields[0] != "aarch64" or fields[1] != str(final.python):
        shutil.rmtree(base, ignore_errors=True)
        raise EmulationError("the emulated root is broken (python -c 'import tvm' under qemu): "
                             + (res.stderr.strip().splitlines() or res.stdout.splitlines() or ["no output"])[-1])
    return fields[2], fields[3]


def start_emulated_server(tracker: str, key: str = DEFAULT_KEY, root: EmulatedRoot | None = None,
                          log_dir: Path | None = None, ready_timeout_s: float = 180.0):
    """Start an RPC server under QEMU from the emulated root, registered at ``tracker`` under ``key``.

    Parameters
    ----------
    tracker : str
        ``HOST:PORT``.
    key : str
    root : EmulatedRoot, optional
        Default: :func:`prepare_root` (prepares it on first use).
    log_dir : Path, optional
    ready_timeout_s : float
        Seconds to wait for the registration (starting Python and TVM under
        emulation takes 5-30 s).

    Returns
    -------
    hwface.rpc.server.ServerProcess
    """
    from hwface.rpc.server import start_server

    root = root or prepare_root()
    env = root.env()
    env["HWFACE_EMULATED"] = "1"
    return start_server(tracker, key, python=str(root.python), env=env, load_library=[root.runtime_extra],
                        log_dir=log_dir, ready_timeout_s=ready_timeout_s)


@contextlib.contextmanager
def emulated_device(key: str = DEFAULT_KEY, tracker: str | None = None, log_dir: Path | None = None):
    """An emulated AArch64 device for the duration of the block.

    With no ``tracker``, a private tracker is started on loopback too. Everything
    started here is stopped on exit, Ctrl-C included.

    Yields
    ------
    hwface.rpc.embedded.DeviceEndpoint
        With ``emulated=True``.
    """
    import tempfile

    from hwface.rpc.embedded import DeviceEndpoint, sigterm_as_interrupt
    from hwface.rpc.tracker import start_tracker
    from hwface.targets import parse_tracker

    root = prepare_root()
    logs = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="hwface-emulated-"))
    started: list = []
    try:
        with sigterm_as_interrupt():
            if tracker is None:
                started.append(start_tracker(log_dir=logs))
                tracker = started[0].address
            started.append(start_emulated_server(tracker, key, root=root, log_dir=logs))
            host, port = parse_tracker(tracker)
            yield DeviceEndpoint(host, port, key, emulated=True)
    finally:
        procs.stop_all(started)
        if log_dir is None:
            shutil.rmtree(logs, ignore_errors=True)
