"""The latency database: measured kernel latencies per target, in SQLite (WAL mode).

One file per target, ``<target>.sqlite``. The shipped file is only read; a
user's runs write to the user's copy (:mod:`hwface.data_dirs`), which starts as a
copy of the shipped one on its first write (:meth:`LatencyStore.for_writing`), and
readers take the user's copy once it exists (:meth:`LatencyStore.for_reading`).
``$HWFACE_LATENCY_DB`` names one folder for both (tests always set it). Tables:

``layers``
    One row per :class:`~hwface.latency.key.LayerKey` (its string is the primary
    key) with its structured fields and MAdds.
``measurements``
    One row per measurement, with its provenance: target, device key and
    machine, TVM and hwface versions, tuned or not, tuning database hash,
    regime (``zoo`` = profile of a zoo network, ``default`` = sampled with TVM's
    default schedule, ``tuned`` = sampled after a small per-kernel tuning),
    trials per kernel, repeat statistics in microseconds, UTC time and source
    (model name or sampler config). Its id is a hash of all of that, so writing
    the same measurement twice stores it once (idempotent).
``sample_configs``
    Sampler bookkeeping: which configurations are done, so a run resumes where
    it stopped.

``fingerprints``
    The fields of every pipeline fingerprint a row carries
    (:mod:`hwface.latency.fingerprint`).
``archived_measurements``, ``archived_networks``
    Rows moved out of ``measurements`` and ``networks``: stale ones by
    :meth:`LatencyStore.prune_stale`, a network to be measured again by
    :meth:`LatencyStore.archive_network` (nothing is deleted).
``round_timings``
    Networks timed in rounds in one run, every network once a round, per
    engine (:mod:`hwface.measure.rounds`): the per-round medians and their median.
``networks``
    Whole networks measured end to end (zoo models and sampled arch specs) with
    their ``split``: ``heldout`` networks and their kernel rows never train.

Every measurement carries its pipeline ``fingerprint``, the drift guard's
``reference`` timings it was taken with (JSON) and its ``split`` (``train`` or
``heldout``). Readers that train or answer take current rows only
(:meth:`LatencyStore.current_frame`).

The schema is versioned (``PRAGMA user_version``, :data:`SCHEMA_VERSION`);
opening an older file migrates it in place (:data:`MIGRATIONS`).

Writers take SQLite's write lock with ``BEGIN IMMEDIATE`` and wait for it (busy
timeout), so several profile or sample processes can write at once. Rows measured
on an emulated device are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from hwface import data_dirs
from hwface.errors import HwfaceError
from hwface.latency.key import LayerKey

REGIMES = ("zoo", "default", "tuned")
TUNED_BUDGET = 16  # K: trials a kernel of the tuned regime (sampled kernels and tuned networks alike)
BUSY_TIMEOUT_S = 120.0
DB_ENV = "HWFACE_LATENCY_DB"

# Schema 0: the tables as first shipped (no user_version).
SCHEMA_V0 = """
CREATE TABLE IF NOT EXISTS layers (
    key TEXT PRIMARY KEY,
    op TEXT NOT NULL, fused TEXT, input_shapes TEXT, output_shape TEXT, kernel TEXT, stride TEXT,
    padding TEXT, dilation TEXT, groups INTEGER, activation TEXT, dtype TEXT, madds INTEGER
);
CREATE TABLE IF NOT EXISTS measurements (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL REFERENCES layers(key),
    target TEXT NOT NULL, device_key TEXT NOT NULL, device_machine TEXT, device_info TEXT,
    tvm_version TEXT NOT NULL, hwface_version TEXT NOT NULL,
    tuned INTEGER NOT NULL, tuning_db_hash TEXT, regime TEXT NOT NULL, trials_per_kernel INTEGER,
    median_us REAL NOT NULL, p10_us REAL NOT NULL, p90_us REAL NOT NULL, cv REAL NOT NULL, samples INTEGER NOT NULL,
    min_repeat_ms REAL, measured_at TEXT NOT NULL, source TEXT, kernel_name TEXT
);
CREATE INDEX IF NOT EXISTS measurements_key ON measurements(key, target, regime);
CREATE TABLE IF NOT EXISTS sample_configs (
    config_id TEXT NOT NULL, target TEXT NOT NULL, regime TEXT NOT NULL, device_key TEXT NOT NULL,
    kind TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL, kernels INTEGER, error TEXT, updated_at TEXT,
    PRIMARY KEY (config_id, target, regime, device_key)
);
"""

# Schema 1: pipeline fingerprints, drift-guard references, held-out split, archive, networks.
MIGRATION_1 = """
ALTER TABLE measurements ADD COLUMN fingerprint TEXT;
ALTER TABLE measurements ADD COLUMN reference TEXT;
ALTER TABLE measurements ADD COLUMN split TEXT NOT NULL DEFAULT 'train';
CREATE INDEX IF NOT EXISTS measurements_fp ON measurements(fingerprint, regime);
CREATE TABLE IF NOT EXISTS fingerprints (fingerprint TEXT PRIMARY KEY, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS archived_measurements AS SELECT * FROM measurements WHERE 0;
ALTER TABLE archived_measurements ADD COLUMN archived_at TEXT;
ALTER TABLE archived_measurements ADD COLUMN archived_why TEXT;
ALTER TABLE sample_configs ADD COLUMN fingerprint TEXT;
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, origin TEXT NOT NULL, spec TEXT, target TEXT NOT NULL,
    device_key TEXT NOT NULL, regime TEXT NOT NULL, trials_per_kernel INTEGER, tuning_db_hash TEXT,
    fingerprint TEXT NOT NULL, split TEXT NOT NULL, kernel_calls INTEGER NOT NULL, kernel_sum_us REAL NOT NULL,
    median_us REAL NOT NULL, p10_us REAL NOT NULL, p90_us REAL NOT NULL, cv REAL NOT NULL, samples INTEGER NOT NULL,
    madds INTEGER, params INTEGER, kernels TEXT NOT NULL, reference TEXT, measured_at TEXT NOT NULL
);
"""

# Schema 2: sampler bookkeeping per fingerprint (the key lacked it, so one device's marks replaced another's).
MIGRATION_2 = """
CREATE TABLE sample_configs_v2 (
    config_id TEXT NOT NULL, target TEXT NOT NULL, regime TEXT NOT NULL, device_key TEXT NOT NULL,
    kind TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL, kernels INTEGER, error TEXT, updated_at TEXT,
    fingerprint TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (config_id, target, regime, device_key, fingerprint)
);
INSERT INTO sample_configs_v2 SELECT config_id, target, regime, device_key, kind, config, status, kernels, error,
    updated_at, COALESCE(fingerprint, '') FROM sample_configs;
DROP TABLE sample_configs;
ALTER TABLE sample_configs_v2 RENAME TO sample_configs
"""

# Schema 3: TVM beside onnxruntime on the same network, timed alternately (hwface.measure.engines).
MIGRATION_3 = """
CREATE TABLE IF NOT EXISTS engine_comparisons (
    id TEXT PRIMARY KEY, network TEXT NOT NULL, target TEXT NOT NULL, device_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL, regime TEXT NOT NULL, trials_per_kernel INTEGER, tuning_db_hash TEXT,
    threads INTEGER NOT NULL, rounds INTEGER NOT NULL,
    tvm_median_us REAL NOT NULL, tvm_p10_us REAL NOT NULL, tvm_p90_us REAL NOT NULL,
    ort_median_us REAL NOT NULL, ort_p10_us REAL NOT NULL, ort_p90_us REAL NOT NULL,
    ratio REAL NOT NULL, ratio_p10 REAL NOT NULL, ratio_p90 REAL NOT NULL,
    ort_version TEXT NOT NULL, max_abs_diff REAL, measured_at TEXT NOT NULL
)
"""

# Schema 4: networks timed in rounds, every network once a round (hwface.measure.rounds), per engine.
MIGRATION_4 = """
CREATE TABLE IF NOT EXISTS round_timings (
    id TEXT PRIMARY KEY, run_id TEXT NOT NULL, network TEXT NOT NULL, engine TEXT NOT NULL, target TEXT NOT NULL,
    device_key TEXT NOT NULL, fingerprint TEXT NOT NULL, regime TEXT NOT NULL, trials_per_kernel INTEGER,
    tuning_db_hash TEXT, threads INTEGER NOT NULL, repeat INTEGER NOT NULL, min_repeat_ms REAL NOT NULL,
    rounds_us TEXT NOT NULL, median_us REAL NOT NULL, measured_at TEXT NOT NULL
)
"""

# Schema 5: archived networks (a network measured again moves its old rows out, :meth:`LatencyStore.archive_network`).
MIGRATION_5 = """
CREATE TABLE IF NOT EXISTS archived_networks AS SELECT * FROM networks WHERE 0;
ALTER TABLE archived_networks ADD COLUMN archived_at TEXT;
ALTER TABLE archived_networks ADD COLUMN archived_why TEXT
"""

SCHEMA_VERSION = 5
SPLITS = ("train", "heldout")


def _backfill_fingerprints(conn) -> None:
    """Schema 0 -> 1: give every old row its legacy fingerprint (they can never be current)."""
    from hwface.latency.fingerprint import legacy_fingerprint

    groups: dict[tuple, list[str]] = {}
    for rid, target, tvm_v, hw_v, info in conn.execute(
            "SELECT id, target, tvm_version, hwface_version, device_info FROM measurements"):
        threads = (json.loads(info) if info else {}).get("runtime_threads") or 0
        groups.setdefault((target, tvm_v, hw_v, threads), []).append(rid)
    for (target, tvm_v, hw_v, threads), ids in groups.items():
        fp = legacy_fingerprint(target, tvm_v, hw_v, {"runtime_threads": threads})
        conn.execute("INSERT OR IGNORE INTO fingerprints VALUES (?, ?)", (fp.digest(), json.dumps(fp.to_dict())))
        conn.executemany("UPDATE measurements SET fingerprint = ? WHERE id = ?", [(fp.digest(), i) for i in ids])


def _restore_sampler_marks(conn) -> None:
    """Schema 1 -> 2: give back each fingerprint the marks another device's run replaced.

    A configuration's rows (``source = 'sample:<config id>'``) say it was done
    under their fingerprint; where its mark is missing, it is rebuilt from the
    configuration's other mark with the rows' summed median as its latency.
    """
    missing = conn.execute(
        "SELECT substr(m.source, 8), m.target, m.regime, m.device_key, m.fingerprint, COUNT(*), SUM(m.median_us), "
        "MAX(m.measured_at) FROM measurements m WHERE m.source LIKE 'sample:%' AND m.fingerprint IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM sample_configs s WHERE s.config_id = substr(m.source, 8) "
        "AND s.target = m.target AND s.regime = m.regime AND s.device_key = m.device_key "
        "AND s.fingerprint = m.fingerprint) GROUP BY 1, 2, 3, 4, 5").fetchall()
    for cid, target, regime, dev, fp, n, total_us, when in missing:
        other = conn.execute("SELECT kind, config FROM sample_configs WHERE config_id = ? AND target = ? "
                             "AND regime = ? LIMIT 1", (cid, target, regime)).fetchone()
        if other is None:
            continue
        cfg = {**json.loads(other[1]), "latency_us": total_us}
        conn.execute("INSERT INTO sample_configs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                     (cid, target, regime, dev, other[0], json.dumps(cfg, sort_keys=True), "done", n, None, when, fp))


# MIGRATIONS[v] takes a file from schema v to v + 1: SQL, then a Python backfill (or None).
MIGRATIONS: dict[int, tuple[str, Any]] = {0: (MIGRATION_1, _backfill_fingerprints),
                                          1: (MIGRATION_2, _restore_sampler_marks),
                                          2: (MIGRATION_3, None),
                                          3: (MIGRATION_4, None),
                                          4: (MIGRATION_5, None)}


def migrate(conn) -> int:
    """Bring an open database to :data:`SCHEMA_VERSION`, one migration per transaction; returns the old version.

    Raises
    ------
    HwfaceError
        The file is newer than this hwface.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise HwfaceError(f"latency database schema {version} is newer than this hwface's ({SCHEMA_VERSION}): "
                          "upgrade hwface")
    start = version
    if version == 0:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA_V0.split(";"):
                if statement.strip():
                    conn.execute(statement)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    while version < SCHEMA_VERSION:
        sql, backfill = MIGRATIONS[version]
        conn.execute("BEGIN IMMEDIATE")
        try:
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) == version:  # another process may have won
                for statement in sql.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if backfill is not None:
                    backfill(conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        version += 1
    return start


class EmulatedMeasurement(HwfaceError):
    """A measurement from an emulated device: its timings mean nothing, so it is never stored."""


def db_dir() -> Path:
    """Where databases and predictors are written: ``$HWFACE_LATENCY_DB``, else the user's ``latency_db``."""
    return data_dirs.write_dir("latency_db")


def db_path(target: str) -> Path:
    """The database file a target's measurements are written to: ``<db_dir>/<target>.sqlite``."""
    return db_dir() / f"{target}.sqlite"


def read_path(target: str) -> Path:
    """The database file a target's rows are read from: the user's once it exists, else the shipped one."""
    name = f"{target}.sqlite"
    found = [d / name for d in data_dirs.read_dirs("latency_db") if (d / name).exists()]
    return found[0] if found else db_path(target)


def seed_from_shipped(target: str) -> bool:
    """Start the user's database of ``target`` as a copy of the shipped one, when it has none yet; True when it did."""
    path = db_path(target)
    shipped = data_dirs.shipped_dir("latency_db") / f"{target}.sqlite"
    if data_dirs.override("latency_db") or path.exists() or not shipped.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.seed")
    with closing(_open_read_only(shipped)) as src, closing(sqlite3.connect(str(tmp))) as dst:
        src.backup(dst)
    os.replace(tmp, path)
    return True


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection.

    An installed package's file opens ``immutable`` (SQLite writes no WAL index
    beside it; nothing writes that file). A checkout's file opens ``mode=ro``, so a
    maintainer's measurement writing it meanwhile is read consistently (SQLite's
    transient ``-shm``/``-wal`` files appear beside it; git ignores them).
    """
    installed = Path(path).resolve().is_relative_to(Path(data_dirs.__file__).resolve().parent / "shipped")
    mode = "ro&immutable=1" if installed else "ro"
    return sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Measurement:
    """One kernel latency measurement and where it came from (latencies in microseconds).

    ``emulated`` is never stored: :meth:`LatencyStore.add` refuses it when True.
    """

    key: LayerKey
    target: str
    device_key: str
    tvm_version: str
    hwface_version: str
    tuned: bool
    regime: str
    median_us: float
    p10_us: float
    p90_us: float
    cv: float
    samples: int
    tuning_db_hash: str | None = None
    trials_per_kernel: int | None = None
    device_machine: str | None = None
    device_info: dict[str, Any] | None = field(default=None, compare=False)
    min_repeat_ms: float | None = None
    measured_at: str = field(default_factory=utc_now)
    source: str | None = None
    kernel_name: str | None = None
    madds: int | None = None
    emulated: bool = False
    fingerprint: Any = field(default=None, compare=False)
    reference: dict[str, Any] | None = field(default=None, compare=False)
    split: str = "train"

    @property
    def fingerprint_digest(self) -> str | None:
        """The stored form of ``fingerprint`` (a :class:`~hwface.latency.fingerprint.Fingerprint` or its digest)."""
        fp = self.fingerprint
        return fp if fp is None or isinstance(fp, str) else fp.digest()

    def row_id(self) -> str:
        """Hash of everything that identifies the measurement (same measurement -> same id)."""
        d = asdict(self)
        d["key"] = self.key.to_str()
        d.pop("device_info")
        d.pop("reference")
        d["fingerprint"] = self.fingerprint_digest
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class NetworkMeasurement:
    """A whole network timed end to end, with the kernel rows it was measured with (microseconds).

    ``kernels`` lists the network's kernel calls in execution order as
    ``[layer key string, calls]`` pairs; ``origin`` is ``zoo`` or ``nas``;
    ``spec`` the arch spec (dict) for ``nas`` networks.
    """

    name: str
    origin: str
    target: str
    device_key: str
    regime: str
    fingerprint: str
    split: str
    kernel_calls: int
    kernel_sum_us: float
    median_us: float
    p10_us: float
    p90_us: float
    cv: float
    samples: int
    kernels: list
    spec: dict[str, Any] | None = None
    trials_per_kernel: int | None = None
    tuning_db_hash: str | None = None
    madds: int | None = None
    params: int | None = None
    reference: dict[str, Any] | None = None
    measured_at: str = field(default_factory=utc_now)

    def row_id(self) -> str:
        d = asdict(self)
        d.pop("reference")
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:24]


class LatencyStore:
    """A target's latency database (see the module docstring).

    Parameters
    ----------
    path : path
        SQLite file; created with its folder when missing (unless ``read_only``).
    read_only : bool
        Open an existing file for reading only (the shipped database): nothing
        is migrated or written.
    """

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            self._conn = _open_read_only(self.path)
            self._conn.row_factory = sqlite3.Row
            self.migrated_from = self._check_version()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise HwfaceError(f"{self.path}: SQLite refused WAL mode ({mode}); use a local filesystem")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self.migrated_from = migrate(self._conn)

    def _check_version(self) -> int:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version != SCHEMA_VERSION:
            raise HwfaceError(f"{self.path}: latency database schema {version}, this hwface reads "
                              f"{SCHEMA_VERSION}: migrate it with `hwface db migrate --db {self.path}`")
        return version

    @classmethod
    def for_target(cls, target: str) -> "LatencyStore":
        """The database a target's measurements are written to (:meth:`for_writing`)."""
        return cls.for_writing(target)

    @classmethod
    def for_writing(cls, target: str) -> "LatencyStore":
        """The user's database of ``target`` (or ``$HWFACE_LATENCY_DB``'s), started from the shipped one when new."""
        seed_from_shipped(target)
        return cls(db_path(target))

    @classmethod
    def for_reading(cls, target: str) -> "LatencyStore":
        """The database ``target``'s rows are read from (:func:`read_path`); the shipped one opens read-only."""
        path = read_path(target)
        shipped = path == data_dirs.shipped_dir("latency_db") / path.name and not data_dirs.override("latency_db")
        return cls(path, read_only=shipped and path.exists())

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "LatencyStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self):
        store = self

        class _Tx:
            def __enter__(self_inner):
                store._conn.execute("BEGIN IMMEDIATE")
                return store._conn

            def __exit__(self_inner, et, ev, tb):
                store._conn.execute("ROLLBACK" if et else "COMMIT")

        return _Tx()

    def add(self, measurements: Iterable[Measurement]) -> int:
        """Store measurements in one transaction; returns how many rows were new.

        Raises
        ------
        EmulatedMeasurement
            Any of them comes from an emulated device (nothing is stored).
        HwfaceError
            An unknown regime.
        """
        ms = list(measurements)
        for m in ms:
            if m.emulated:
                raise EmulatedMeasurement(
                    f"refusing to store latencies measured on emulated device {m.device_key!r}: emulated timings mean nothing")
            if m.regime not in REGIMES:
                raise HwfaceError(f"unknown regime {m.regime!r} (known: {', '.join(REGIMES)})")
            if m.regime == "tuned" and not m.tuned:
                raise HwfaceError("a 'tuned' regime measurement must have tuned=True")
            if m.split not in SPLITS:
                raise HwfaceError(f"unknown split {m.split!r} (known: {', '.join(SPLITS)})")
        new = 0
        with self._write() as c:
            for m in ms:
                if m.fingerprint is not None and not isinstance(m.fingerprint, str):
                    c.execute("INSERT OR IGNORE INTO fingerprints VALUES (?, ?)",
                              (m.fingerprint.digest(), json.dumps(m.fingerprint.to_dict())))
                k = m.key
                f = k.fields_dict()
                c.execute(
                    "INSERT OR IGNORE INTO layers (key, op, fused, input_shapes, output_shape, kernel, stride, padding,"
                    " dilation, groups, activation, dtype, madds) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (k.to_str(), k.op, f["fused"], f["input_shapes"], f["output_shape"], _none(f["kernel"]),
                     _none(f["stride"]), _none(f["padding"]), _none(f["dilation"]), k.groups, k.activation, k.dtype,
                     m.madds))
                cur = c.execute(
                    "INSERT OR IGNORE INTO measurements (id, key, target, device_key, device_machine, device_info,"
                    " tvm_version, hwface_version, tuned, tuning_db_hash, regime, trials_per_kernel, median_us, p10_us,"
                    " p90_us, cv, samples, min_repeat_ms, measured_at, source, kernel_name, fingerprint, reference, split)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (m.row_id(), k.to_str(), m.target, m.device_key, m.device_machine,
                     json.dumps(m.device_info) if m.device_info else None, m.tvm_version, m.hwface_version,
                     int(m.tuned), m.tuning_db_hash, m.regime, m.trials_per_kernel, m.median_us, m.p10_us, m.p90_us,
                     m.cv, m.samples, m.min_repeat_ms, m.measured_at, m.source, m.kernel_name, m.fingerprint_digest,
                     json.dumps(m.reference) if m.reference else None, m.split))
                new += cur.rowcount
        return new

    # -- sampler bookkeeping -------------------------------------------------
    def config_done(self, target: str, regime: str, device_key: str, fingerprint: str | None = None) -> set[str]:
        """Config ids already measured (or failed) for this target, regime, device and pipeline fingerprint.

        A configuration measured by another pipeline (another fingerprint) is not done.
        """
        rows = self._conn.execute(
            "SELECT config_id FROM sample_configs WHERE target=? AND regime=? AND device_key=? "
            "AND status IN ('done','failed') AND fingerprint = ?",
            (target, regime, device_key, fingerprint or "")).fetchall()
        return {r[0] for r in rows}

    def mark_configs(self, rows: Iterable[tuple[str, str, str, str, str, dict, str, int | None, str | None]],
                     fingerprint: str | None = None) -> None:
        """Record sampler configs: (config_id, target, regime, device_key, kind, config, status, kernels, error)."""
        with self._write() as c:
            for cid, target, regime, dev, kind, cfg, status, kernels, err in rows:
                c.execute("INSERT OR REPLACE INTO sample_configs (config_id, target, regime, device_key, kind, config,"
                          " status, kernels, error, updated_at, fingerprint) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                          (cid, target, regime, dev, kind, json.dumps(cfg, sort_keys=True), status, kernels, err,
                           utc_now(), fingerprint or ""))

    def sampled_configs(self, target: str, regime: str, device_key: str,
                        fingerprint: str | None = None) -> list[tuple[dict[str, Any], float]]:
        """Configurations measured so far (by this pipeline) with their summed kernel latency (us)."""
        rows = self._conn.execute(
            "SELECT config FROM sample_configs WHERE target=? AND regime=? AND device_key=? AND status='done' "
            "AND fingerprint = ?", (target, regime, device_key, fingerprint or "")).fetchall()
        out = []
        for (cfg,) in rows:
            d = json.loads(cfg)
            lat = d.pop("latency_us", None)
            if lat:
                out.append((d, float(lat)))
        return out

    # -- fingerprints ----------------------------------------------------------
    def fingerprints(self) -> dict[str, dict[str, Any]]:
        """Every fingerprint rows carry: digest -> fields."""
        return {r[0]: json.loads(r[1]) for r in self._conn.execute("SELECT fingerprint, fields FROM fingerprints")}

    def relations(self, today: "Fingerprint") -> dict[str, str]:
        """Every stored digest -> ``current``, ``stale`` or ``other device`` against ``today``."""
        from hwface.latency.fingerprint import Fingerprint

        return {d: Fingerprint.from_dict(f).relation_to(today) for d, f in self.fingerprints().items()}

    def stale_counts(self, today: "Fingerprint") -> dict[str, dict[str, int]]:
        """Per regime: rows that are current, stale and another device's against ``today``."""
        rel = self.relations(today)
        out: dict[str, dict[str, int]] = {}
        for regime, digest, n in self._conn.execute(
                "SELECT regime, fingerprint, COUNT(*) FROM measurements GROUP BY 1, 2"):
            counts = out.setdefault(regime, {"current": 0, "stale": 0, "other device": 0})
            counts[rel.get(digest, "stale")] += n
        return out

    def prune_stale(self, today: "Fingerprint", dry_run: bool = False) -> dict[str, int]:
        """Move the stale rows (same device as ``today``, another pipeline) into ``archived_measurements``.

        Nothing is deleted: the rows keep every column and get ``archived_at``
        and ``archived_why``. Rows of other devices stay (they are current for
        their device); networks of other fingerprints stay in ``networks``
        (they are never read as current).

        Returns
        -------
        dict
            Rows moved (or that would move, with ``dry_run``) per regime.
        """
        rel = self.relations(today)
        keep = [d for d, r in rel.items() if r != "stale"]
        marks = ", ".join("?" * len(keep)) or "NULL"
        stale = f"(fingerprint IS NULL OR fingerprint NOT IN ({marks}))"
        moved = {r[0]: r[1] for r in self._conn.execute(
            f"SELECT regime, COUNT(*) FROM measurements WHERE {stale} GROUP BY regime", keep)}
        if dry_run or not moved:
            return moved
        with self._write() as c:
            _move_to_archive(c, "measurements", stale, keep, f"stale: same device, pipeline is not {today.digest()}")
        return moved

    def archive_network(self, name: str, regime: str, fingerprint: str, dry_run: bool = False) -> dict[str, int]:
        """Move one network's rows under ``fingerprint`` into the archive, so that it can be measured again.

        Its end-to-end rows (``networks``) and the kernel rows its profiles stored
        (``measurements`` whose ``source`` is the network's name) move into
        ``archived_networks`` and ``archived_measurements``, stamped like
        :meth:`prune_stale`'s. Tuning records and engine comparisons stay.

        Returns
        -------
        dict
            ``measurements`` and ``networks``: rows moved (or that would move, with ``dry_run``).
        """
        args = [name, regime, fingerprint]
        where = {"measurements": "source = ? AND regime = ? AND fingerprint = ?",
                 "networks": "name = ? AND regime = ? AND fingerprint = ?"}

        def counts(c) -> dict[str, int]:
            return {t: c.execute(f"SELECT COUNT(*) FROM {t} WHERE {w}", args).fetchone()[0] for t, w in where.items()}

        if dry_run:
            return counts(self._conn)
        with self._write() as c:  # counted and moved in one transaction: a concurrent writer waits
            moved = counts(c)
            for table, w in where.items():
                _move_to_archive(c, table, w, args, f"measured again: {name}")
        return moved

    def archived(self, table: str = "measurements") -> int:
        """Rows in the archive of ``table``: ``measurements`` (kernel rows) or ``networks`` (end to end)."""
        if table not in ("measurements", "networks"):
            raise HwfaceError(f"no archive of {table!r} (known: measurements, networks)")
        return self._conn.execute(f"SELECT COUNT(*) FROM archived_{table}").fetchone()[0]

    # -- networks -----------------------------------------------------------------
    def add_network(self, net: "NetworkMeasurement") -> bool:
        """Store one end-to-end network measurement; returns False when it was already stored."""
        if net.split not in SPLITS:
            raise HwfaceError(f"unknown split {net.split!r} (known: {', '.join(SPLITS)})")
        row = asdict(net)
        row["id"] = net.row_id()
        for name in ("spec", "kernels", "reference"):
            row[name] = json.dumps(row[name]) if row[name] is not None else None
        cols = list(row)
        with self._write() as c:
            cur = c.execute(f"INSERT OR IGNORE INTO networks ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                            [row[k] for k in cols])
        return cur.rowcount > 0

    def networks_frame(self, fingerprint: str | None = None, regime: str | None = None, split: str | None = None):
        """End-to-end network measurements (``kernels``, ``spec``, ``reference`` parsed from JSON)."""
        import pandas as pd

        conds, args = [], []
        for col, val in (("fingerprint", fingerprint), ("regime", regime), ("split", split)):
            if val is not None:
                conds.append(f"{col} = ?")
                args.append(val)
        sql = "SELECT * FROM networks" + (" WHERE " + " AND ".join(conds) if conds else "") + " ORDER BY measured_at, id"
        frame = pd.read_sql_query(sql, self._conn, params=args)
        for name in ("spec", "kernels", "reference"):
            frame[name] = [json.loads(v) if isinstance(v, str) and v else None for v in frame[name]]
        return frame

    def network_done(self, name: str, regime: str, device_key: str, fingerprint: str) -> bool:
        """True when ``name`` was measured end to end under this regime, device and fingerprint."""
        return self._conn.execute(
            "SELECT 1 FROM networks WHERE name=? AND regime=? AND device_key=? AND fingerprint=? LIMIT 1",
            (name, regime, device_key, fingerprint)).fetchone() is not None

    # -- engine comparisons --------------------------------------------------------
    def add_engine_comparison(self, row: dict[str, Any]) -> None:
        """Store (or replace) one TVM-vs-onnxruntime comparison: the columns of ``engine_comparisons`` but ``id``."""
        row = {**row, "id": hashlib.sha256("|".join(str(row[k]) for k in (
            "network", "target", "device_key", "fingerprint", "regime")).encode()).hexdigest()[:16]}
        cols = list(row)
        with self._write() as c:
            c.execute(f"INSERT OR REPLACE INTO engine_comparisons ({', '.join(cols)}) "
                      f"VALUES ({','.join('?' * len(cols))})", [row[k] for k in cols])

    def engine_comparisons_frame(self, fingerprint: str | None = None, regime: str | None = None):
        """Stored engine comparisons, as a pandas DataFrame."""
        import pandas as pd

        conds = [(c, v) for c, v in (("fingerprint", fingerprint), ("regime", regime)) if v is not None]
        sql = "SELECT * FROM engine_comparisons" + (
            " WHERE " + " AND ".join(f"{c} = ?" for c, _ in conds) if conds else "") + " ORDER BY network"
        return pd.read_sql_query(sql, self._conn, params=[v for _, v in conds])

    def add_round_timings(self, rows: Iterable[dict[str, Any]]) -> int:
        """Store one run's round timings (the columns of ``round_timings`` but ``id``; ``rounds_us`` a list)."""
        rows = [{**r, "rounds_us": json.dumps(list(r["rounds_us"])),
                 "id": hashlib.sha256(f"{r['run_id']}|{r['network']}|{r['engine']}".encode()).hexdigest()[:16]}
                for r in rows]
        if not rows:
            return 0
        cols = list(rows[0])
        with self._write() as c:
            c.executemany(f"INSERT OR REPLACE INTO round_timings ({', '.join(cols)}) "
                          f"VALUES ({','.join('?' * len(cols))})", [[r[k] for k in cols] for r in rows])
        return len(rows)

    def round_timings_frame(self, fingerprint: str | None = None, regime: str | None = None):
        """Stored round timings (``rounds_us`` parsed back to lists), as a pandas DataFrame."""
        import pandas as pd

        conds = [(c, v) for c, v in (("fingerprint", fingerprint), ("regime", regime)) if v is not None]
        sql = "SELECT * FROM round_timings" + (
            " WHERE " + " AND ".join(f"{c} = ?" for c, _ in conds) if conds else "") + " ORDER BY measured_at, network"
        frame = pd.read_sql_query(sql, self._conn, params=[v for _, v in conds])
        frame["rounds_us"] = frame["rounds_us"].map(json.loads)
        return frame

    # -- reading ---------------------------------------------------------------
    def frame(self, regime: str | None = None, op: str | None = None, where: dict[str, Any] | None = None):
        """Measurements joined with their layer fields, as a pandas DataFrame.

        Parameters
        ----------
        regime, op : str, optional
            Filters.
        where : dict, optional
            Extra equality filters on any column (``{"device_key": "host"}``).
        """
        import pandas as pd

        conds, args = [], []
        for col, val in (("m.regime", regime), ("l.op", op)):
            if val is not None:
                conds.append(f"{col} = ?")
                args.append(val)
        allowed = set(_columns(self._conn, "measurements")) | set(_columns(self._conn, "layers"))
        for col, val in (where or {}).items():
            if col not in allowed:
                raise HwfaceError(f"no column {col!r} in the latency database (known: {', '.join(sorted(allowed))})")
            table = "m" if col in _columns(self._conn, "measurements") else "l"
            conds.append(f"{table}.{col} = ?")
            args.append(val)
        sql = ("SELECT m.*, l.op, l.fused, l.input_shapes, l.output_shape, l.kernel, l.stride, l.padding, l.dilation,"
               " l.groups, l.activation, l.dtype, l.madds FROM measurements m JOIN layers l ON l.key = m.key")
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        sql += " ORDER BY m.measured_at, m.id"
        return pd.read_sql_query(sql, self._conn, params=args)

    def current_frame(self, fingerprint: str, regime: str, split: str | None = "train",
                      trials_per_kernel: int | None = None):
        """The rows a predictor may learn from or a lookup may answer with, and how many were skipped.

        Parameters
        ----------
        fingerprint : str
            Today's fingerprint digest; rows of any other are skipped (stale).
        regime : str
        split : str or None
            ``train`` (default) leaves out held-out networks' rows; None keeps every split.
        trials_per_kernel : int, optional
            Tuned regime: only rows tuned with this budget.

        Returns
        -------
        (DataFrame, int)
            The current rows and the number of stale rows of the regime left out.
        """
        where: dict[str, Any] = {"fingerprint": fingerprint}
        if split is not None:
            where["split"] = split
        if trials_per_kernel is not None:
            where["trials_per_kernel"] = trials_per_kernel
        frame = self.frame(regime=regime, where=where)
        stale = self._conn.execute("SELECT COUNT(*) FROM measurements WHERE regime = ? AND fingerprint IS NOT ?",
                                   (regime, fingerprint)).fetchone()[0]
        return frame, int(stale)

    def stats(self) -> dict[str, Any]:
        """Counts: layers, measurements, per regime/op/device, per target and regime (zoo models, sampled configurations), and the measured time span."""
        c = self._conn
        out: dict[str, Any] = {
            "path": str(self.path),
            "layers": c.execute("SELECT COUNT(*) FROM layers").fetchone()[0],
            "measurements": c.execute("SELECT COUNT(*) FROM measurements").fetchone()[0],
        }
        for col in ("regime", "target", "device_key", "tvm_version"):
            out[f"by_{col}"] = {r[0]: r[1] for r in c.execute(
                f"SELECT {col}, COUNT(*) FROM measurements GROUP BY {col} ORDER BY {col}")}
        out["by_op"] = {r[0]: r[1] for r in c.execute(
            "SELECT l.op, COUNT(*) FROM measurements m JOIN layers l ON l.key = m.key GROUP BY l.op ORDER BY l.op")}
        span = c.execute("SELECT MIN(measured_at), MAX(measured_at) FROM measurements").fetchone()
        out["first_measured_at"], out["last_measured_at"] = span[0], span[1]
        out["sample_configs"] = {f"{r[0]}/{r[1]}": r[2] for r in c.execute(
            "SELECT regime, status, COUNT(*) FROM sample_configs GROUP BY regime, status")}
        per: dict[str, dict[str, Any]] = {}
        for target, regime, n, tuned, keys in c.execute(
                "SELECT target, regime, COUNT(*), SUM(tuned), COUNT(DISTINCT key) FROM measurements "
                "GROUP BY target, regime ORDER BY target, regime"):
            per.setdefault(target, {})[regime] = {"measurements": n, "tuned_measurements": tuned, "layers": keys}
        for target, regime, n in c.execute(
                "SELECT target, regime, COUNT(*) FROM sample_configs WHERE status = 'done' GROUP BY target, regime"):
            per.setdefault(target, {}).setdefault(regime, {})["sampled_configs"] = n
        for target, models in c.execute(
                "SELECT target, GROUP_CONCAT(DISTINCT source) FROM measurements WHERE regime = 'zoo' GROUP BY target"):
            per[target]["zoo"]["models"] = sorted(models.split(","))
        out["by_target_regime"] = per
        out["networks"] = {f"{r[0]}/{r[1]}": r[2] for r in c.execute(
            "SELECT regime, split, COUNT(*) FROM networks GROUP BY regime, split ORDER BY regime, split")}
        return out


def _move_to_archive(conn, table: str, where: str, args: list, why: str) -> None:
    """Copy the rows of ``table`` matching ``where`` into ``archived_<table>`` (stamped now, ``why``), then delete them."""
    cols = ", ".join(_columns(conn, table))
    conn.execute(f"INSERT OR IGNORE INTO archived_{table} ({cols}, archived_at, archived_why) "
                 f"SELECT {cols}, ?, ? FROM {table} WHERE {where}", (utc_now(), why, *args))
    conn.execute(f"DELETE FROM {table} WHERE ({where}) AND id IN (SELECT id FROM archived_{table})", args)


def _columns(conn, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _none(v: str) -> str | None:
    return None if v == "-" else v


EXPORT_FORMATS = ("csv", "parquet", "json")


def export_frame(frame, path: str | Path | None, fmt: str):
    """Write a measurements frame as CSV, Parquet or JSON (records); ``path=None`` returns the text (csv/json).

    Raises
    ------
    HwfaceError
        Unknown format, Parquet to stdout, or no Parquet engine (pyarrow) installed.
    """
    if fmt not in EXPORT_FORMATS:
        raise HwfaceError(f"unknown export format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})")
    if fmt == "parquet":
        if path is None:
            raise HwfaceError("parquet export needs --output FILE")
        try:
            frame.to_parquet(path, index=False)
        except ImportError as exc:
            raise HwfaceError(f"parquet export needs pyarrow: pip install pyarrow ({exc})") from None
        return path
    if fmt == "csv":
        text = frame.to_csv(index=False)
    else:
        text = frame.to_json(orient="records", indent=2)
    if path is None:
        return text
    Path(path).write_text(text)
    return path
