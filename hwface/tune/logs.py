"""Tuning logs: one MetaSchedule JSON database per target, shared by every model.

Layout::

    tuning_logs/<target>/database_workload.json
    tuning_logs/<target>/database_tuning_record.json
    tuning_logs/host/<cpu-id>/...              (host logs are keyed by the CPU measured on)
    tuning_logs/<target>[/<cpu-id>]/budget-<K>/...  (every kernel tuned with K trials: the tuned regime)

Both files are append-only JSON lines, written one record at a time by
MetaSchedule, so a tune killed with SIGKILL can at worst leave a torn last line:
:func:`open_database` drops such a line (and says so) before opening, so the
database is always readable. Several tunes may share the logs at once: appends and
repairs take the folder's lock (:func:`folder_lock`, :mod:`hwface.tune.shared_db`).
Records measured on one CPU are never applied to
another: the host's logs live under a folder named after the CPU model, its
LLVM ``mcpu`` and its core count.

The shipped logs are only read. A user's tunes write to the user's
``tuning_logs`` (:mod:`hwface.data_dirs`), whose folders start as copies of the
shipped ones (:func:`seed_from_shipped`); until a folder has records of its own,
reads go to the shipped one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from hwface.compile.records import best_seconds, count_tuned_kernels, kernel_tasks, record_counts  # noqa: F401
from hwface import data_dirs
from hwface.targets import TargetSpec

WORKLOAD_FILE = "database_workload.json"
RECORD_FILE = "database_tuning_record.json"
LOCK_FILE = "database.lock"


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of a tuning-database folder (waits while another process holds it).

    Taken around every append (:class:`hwface.tune.shared_db.SharedJSONDatabase`)
    and every repair, so that two tunes can share one target's logs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def logs_root() -> Path:
    """Where tuning records are written: ``$HWFACE_TUNING_LOGS``, else the user's ``tuning_logs`` (:mod:`hwface.data_dirs`)."""
    return data_dirs.write_dir("tuning_logs")


def _has_records(folder: Path) -> bool:
    f = Path(folder) / RECORD_FILE
    return f.exists() and f.stat().st_size > 0


def shipped_twin(folder: str | Path) -> Path | None:
    """The shipped logs folder at the same place as a user's ``folder`` under its root, when it holds records.

    None when ``$HWFACE_TUNING_LOGS`` names the logs (they are then the only ones)
    or ``folder`` is not under the user's logs.
    """
    if data_dirs.override("tuning_logs"):
        return None
    try:
        rel = Path(folder).resolve().relative_to(logs_root().resolve())
    except ValueError:
        return None
    twin = data_dirs.shipped_dir("tuning_logs") / rel
    return twin if _has_records(twin) else None


def reading_dir(folder: str | Path) -> Path:
    """The folder reads of ``folder`` go to: itself once it holds records, else its shipped twin, else itself."""
    folder = Path(folder)
    return folder if _has_records(folder) else (shipped_twin(folder) or folder)


def seed_from_shipped(folder: str | Path) -> bool:
    """Start a user's logs folder as a copy of its shipped twin, when it holds no records yet; True when it did.

    The first tune that writes to a folder keeps the shipped records it would
    otherwise have read, so shipped kernels are reused, not tuned again.
    """
    folder = Path(folder)
    twin = shipped_twin(folder)
    if twin is None:
        return False
    with folder_lock(folder):
        if _has_records(folder):
            return False
        for name in (WORKLOAD_FILE, RECORD_FILE):
            tmp = folder / f"{name}.seed"
            shutil.copyfile(twin / name, tmp)
            os.replace(tmp, folder / name)
    return True


def cpu_id(spec: TargetSpec) -> str:
    """Identity of the CPU a host target runs on: CPU model, LLVM mcpu and core count.

    e.g. ``amd-epyc_znver5_2c``.
    """
    model = "unknown-cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    return f"{slug}_{spec.target.get('mcpu', 'generic')}_{spec.target.get('num-cores', 0)}c"


def logs_dir(spec: TargetSpec) -> Path:
    """Folder of a target's tuning database (host: per CPU)."""
    if spec.is_host:
        return logs_root() / spec.name / cpu_id(spec)
    return logs_root() / spec.name


def budget_dir(spec: TargetSpec, trials_per_kernel: int) -> Path:
    """Folder of the records of the tuned regime: every kernel tuned with ``trials_per_kernel`` trials.

    Networks compared at one budget share it, so a kernel they share is tuned
    once; :func:`hwface.compile.compile_artifact` deploys the target's own logs
    (:func:`logs_dir`), never these, unless given them (``--logs``).
    """
    return logs_dir(spec) / f"budget-{trials_per_kernel}"


def rehearsal_dir(spec: TargetSpec, key: str) -> Path:
    """Folder of the records of a rehearsal: tuning ``spec`` on the emulated device ``key``.

    Kept apart from the target's logs, which :func:`hwface.compile.compile_artifact`
    applies: timings under emulation say nothing of the real device.
    """
    return logs_root() / spec.name / f"emulated-{key}"


@dataclass(frozen=True)
class LogsStatus:
    """What is on disk for a target: folder, record count, hash, and other CPUs' logs (host)."""

    path: Path
    records: int
    workloads: int
    db_hash: str | None
    dropped_lines: int
    other_cpus: tuple[str, ...]


def trim_to_budget(folder: Path, records_per_kernel: int) -> int:
    """Keep each workload's first ``records_per_kernel`` records (in log order) in a budget's logs; returns how many went.

    Two tunes started at once on the same budget both tune the kernels missing
    at their start; the first K + 1 records of a kernel are then the ones a
    single tune would have kept. Run it with no tune writing to ``folder``.
    """
    path = Path(folder) / RECORD_FILE
    if not path.exists():
        return 0
    with folder_lock(Path(folder)):
        kept, seen, dropped = [], {}, 0
        for line in path.read_bytes().splitlines(keepends=True):
            if not line.strip():
                continue
            workload = json.loads(line)[0]
            seen[workload] = seen.get(workload, 0) + 1
            if seen[workload] <= records_per_kernel:
                kept.append(line)
            else:
                dropped += 1
        if dropped:
            path.write_bytes(b"".join(kept))
    return dropped


def repair(path: Path) -> int:
    """Drop unparseable lines (a torn last line after SIGKILL) from a JSON-lines file; returns how many."""
    if not path.exists():
        return 0
    lines = path.read_bytes().splitlines(keepends=True)
    good, dropped = [], 0
    for line in lines:
        try:
            if line.strip():
                json.loads(line)
            good.append(line if line.endswith(b"\n") else line + b"\n")
        except ValueError:
            dropped += 1
    if dropped or (lines and not lines[-1].endswith(b"\n")):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(b"".join(good))
        os.replace(tmp, path)
    return dropped


def db_hash(path: Path) -> str | None:
    """sha256 (16 hex digits) of a database's records, independent of their order; None when empty."""
    records = path / RECORD_FILE
    if not records.exists() or records.stat().st_size == 0:
        return None
    h = hashlib.sha256()
    for line in sorted(records.read_bytes().splitlines()):
        h.update(line)
    for line in sorted((path / WORKLOAD_FILE).read_bytes().splitlines()):
        h.update(line)
    return h.hexdigest()[:16]


def status(spec: TargetSpec, path: Path | None = None) -> LogsStatus:
    """Repair and describe the target's tuning logs (or those in the folder ``path``).

    A user's folder without records of its own is described by its shipped twin
    (:func:`reading_dir`); only the user's own files are ever repaired.
    """
    asked = Path(path) if path is not None else logs_dir(spec)
    path = reading_dir(asked)
    dropped = 0
    if path == asked and path.is_dir():
        with folder_lock(path):
            dropped = repair(path / WORKLOAD_FILE) + repair(path / RECORD_FILE)
    count = lambda f: sum(1 for line in f.read_bytes().splitlines() if line.strip()) if f.exists() else 0  # noqa: E731
    others: tuple[str, ...] = ()
    if spec.is_host and asked == logs_dir(spec):
        others = tuple(sorted(_cpu_folders(spec) - {asked.name}))
    return LogsStatus(path, count(path / RECORD_FILE), count(path / WORKLOAD_FILE), db_hash(path), dropped, others)


def _cpu_folders(spec: TargetSpec) -> set[str]:
    """Names of the host CPU folders holding logs, the user's and the shipped ones."""
    roots = [logs_root()] + ([] if data_dirs.override("tuning_logs") else [data_dirs.shipped_dir("tuning_logs")])
    return {p.name for r in roots if (r / spec.name).is_dir() for p in (r / spec.name).iterdir() if p.is_dir()}


def open_database(spec: TargetSpec, create: bool = False, path: Path | None = None):
    """The target's MetaSchedule database and its hash.

    Parameters
    ----------
    spec : TargetSpec
    create : bool
        Create the folder and empty files when missing (tuning); otherwise a
        target without logs gives ``(None, None)``.
    path : Path, optional
        Folder of the database instead of the target's (:func:`logs_dir`).
        Reads of a user's folder without records go to its shipped twin; a
        tune (``create``) first starts the user's folder from it
        (:func:`seed_from_shipped`).

    Returns
    -------
    (Database or None, str or None)
        With ``create``, a :class:`~hwface.tune.shared_db.SharedJSONDatabase`
        (another tune may append to the same logs meanwhile); else MetaSchedule's
        JSONDatabase.
    """
    from tvm.s_tir import meta_schedule as ms

    if create:
        from hwface.tune.shared_db import SharedJSONDatabase

        folder = Path(path) if path is not None else logs_dir(spec)
        seed_from_shipped(folder)
        return SharedJSONDatabase(folder), status(spec, folder).db_hash
    st = status(spec, path)
    if st.records == 0:
        return None, None
    db = ms.database.JSONDatabase(
        path_workload=str(st.path / WORKLOAD_FILE),
        path_tuning_record=str(st.path / RECORD_FILE),
        allow_missing=True,
        module_equality="structural",
    )
    return db, st.db_hash


def stored_twin(database, mod):
    """The database's own copy of a kernel structurally equal to ``mod`` (with its block names), else ``mod``.

    Tune on it: a record is filed under, and replayed on load against, the first
    structurally equal workload, so it must be traced on that workload's names
    (see :mod:`hwface.tune.shared_db`).
    """
    return database.commit_workload(mod).mod if database.has_workload(mod) else mod
