"""The latency database: idempotent writes, concurrent writers, refusal of emulated rows, export, `hwface db`."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3

import pandas as pd
import pytest

from hwface.errors import HwfaceError
from hwface.latency.key import LayerKey
from hwface.latency.store import EmulatedMeasurement, LatencyStore, Measurement, db_path
from tests.conftest import assert_one_line_error


def _key(i: int) -> LayerKey:
    return LayerKey(op="dwconv", fused=("conv2d", "add", "prelu"), input_shapes=((1, 8 + i, 14, 14),),
                    output_shape=(1, 8 + i, 14, 14), kernel=(3, 3), stride=(1, 1), padding=(1, 1, 1, 1),
                    dilation=(1, 1), groups=8 + i, activation="prelu")


def _m(i: int, writer: int = 0, **kw) -> Measurement:
    base = dict(key=_key(i % 50), target="host", device_key="host", tvm_version="0.27.0.post1", hwface_version="0.1.0",
                tuned=False, regime="default", median_us=10.0 + i, p10_us=9.0 + i, p90_us=11.0 + i, cv=0.01,
                samples=5, device_machine="x86_64", min_repeat_ms=10, source=f"writer{writer}:{i}",
                measured_at="2026-01-01T00:00:00Z")
    base.update(kw)
    return Measurement(**base)


def test_writes_are_idempotent(tmp_path):
    with LatencyStore(tmp_path / "host.sqlite") as db:
        assert db.add([_m(i) for i in range(10)]) == 10
        assert db.add([_m(i) for i in range(10)]) == 0
        st = db.stats()
        assert (st["layers"], st["measurements"]) == (10, 10)
        assert db._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _writer(path: str, writer: int, n: int) -> None:
    with LatencyStore(path) as db:
        for i in range(0, n, 5):  # many small transactions, interleaving with the other writer
            db.add([_m(j, writer) for j in range(i, i + 5)])


def test_two_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "host.sqlite")
    LatencyStore(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 200)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with LatencyStore(path) as db:
        st = db.stats()
    assert st["measurements"] == 400 and st["layers"] == 50


def test_emulated_measurements_are_refused(tmp_path):
    with LatencyStore(tmp_path / "x.sqlite") as db:
        with pytest.raises(EmulatedMeasurement, match="emulated"):
            db.add([_m(0), _m(1, emulated=True)])
        assert db.stats()["measurements"] == 0  # nothing of the batch was stored


def test_tuned_regime_needs_tuned_rows(tmp_path):
    from hwface.errors import HwfaceError

    with LatencyStore(tmp_path / "x.sqlite") as db, pytest.raises(HwfaceError, match="tuned"):
        db.add([_m(0, regime="tuned")])


@pytest.fixture
def filled_db(latency_db):
    with LatencyStore(db_path("host")) as db:
        db.add([_m(i) for i in range(6)] + [_m(i, regime="zoo", source="mobilefacenet") for i in range(3)])
    return db_path("host")


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_formats(filled_db, cli, tmp_path, fmt):
    out = tmp_path / f"export.{fmt}"
    res = cli("db", "export", "--format", fmt, "-o", out)
    assert res.code == 0, res.err
    frame = {"csv": pd.read_csv, "json": pd.read_json, "parquet": pd.read_parquet}[fmt](out)
    assert len(frame) == 9
    for col in ("key", "op", "kernel", "target", "device_key", "tvm_version", "tuned", "tuning_db_hash", "regime",
                "median_us", "p10_us", "p90_us", "cv", "samples", "measured_at", "hwface_version"):
        assert col in frame.columns
    assert LayerKey.from_str(frame["key"][0]).op == "dwconv"


def test_db_cli_stats_query_and_errors(filled_db, cli, tmp_path):
    res = cli("db", "stats", "--format", "json")
    assert res.code == 0, res.err
    st = json.loads(res.out)
    assert st["measurements"] == 9 and st["by_regime"] == {"default": 6, "zoo": 3}
    assert st["by_target_regime"] == {"host": {
        "default": {"measurements": 6, "tuned_measurements": 0, "layers": 6},
        "zoo": {"measurements": 3, "tuned_measurements": 0, "layers": 3, "models": ["mobilefacenet"]}}}
    res = cli("db", "query", "--regime", "zoo", "--format", "json")
    rows = json.loads(res.out)
    assert len(rows) == 3 and {r["source"] for r in rows} == {"mobilefacenet"}
    res = cli("db", "query", "--key", _key(2).to_str(), "--format", "json")
    assert len(json.loads(res.out)) == 2
    assert_one_line_error(cli("db", "query", "--where", "nosuchcol=1"), "nosuchcol")
    assert_one_line_error(cli("db", "export", "--format", "parquet"), "--output")
    assert_one_line_error(cli("db", "stats", "--db", tmp_path / "none.sqlite"), "no latency database")


def test_the_previous_shipped_schema_migrates_and_its_rows_are_stale(tmp_path):
    """A schema-0 file (the database as shipped before fingerprints) opens migrated, its rows all stale."""
    import shutil
    import sqlite3
    from pathlib import Path

    from hwface.latency.fingerprint import current_fingerprint
    from hwface.latency.store import SCHEMA_V0, SCHEMA_VERSION
    from hwface.targets import load_target

    old = tmp_path / "v0.sqlite"
    conn = sqlite3.connect(old)
    conn.executescript(SCHEMA_V0)
    conn.execute("INSERT INTO layers (key, op) VALUES ('k1', 'conv')")
    conn.execute("INSERT INTO measurements (id, key, target, device_key, device_info, tvm_version, hwface_version,"
                 " tuned, regime, median_us, p10_us, p90_us, cv, samples, measured_at) VALUES"
                 " ('r1', 'k1', 'host', 'host', '{\"runtime_threads\": 1}', '0.27.0.post1', '0.2.0', 0, 'default',"
                 " 10, 9, 11, 0.1, 5, '2026-01-01T00:00:00Z')")
    conn.commit()
    conn.close()
    shipped = Path(__file__).resolve().parents[2] / "latency_db" / "host.sqlite"
    files = [old]
    if sqlite3.connect(shipped).execute("PRAGMA user_version").fetchone()[0] == 0:
        shutil.copy(shipped, tmp_path / "shipped.sqlite")
        files.append(tmp_path / "shipped.sqlite")
    today = current_fingerprint(load_target("host"))
    for path in files:
        n = sqlite3.connect(path).execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        with LatencyStore(path) as db:
            assert db.migrated_from == 0
            counts = db.stale_counts(today)
            assert sum(c["stale"] for c in counts.values()) == n and not any(c["current"] for c in counts.values())
            assert all(f["tvm_target"] == "unrecorded" for f in db.fingerprints().values())
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        with LatencyStore(path) as db:  # a second open finds nothing to migrate
            assert db.migrated_from == SCHEMA_VERSION


def test_prune_archives_stale_rows_and_deletes_nothing(tmp_path):
    from hwface.latency.fingerprint import Fingerprint

    old = Fingerprint("host", "{}", "0.27.0.post1", "0.3.0", 2)
    new = Fingerprint("host", "{}", "0.27.0.post1", "0.4.0", 2)
    with LatencyStore(tmp_path / "db.sqlite") as db:
        db.add([_m(0, fingerprint=old), _m(1, fingerprint=old), _m(2, fingerprint=new)])
        assert db.prune_stale(new, dry_run=True) == {"default": 2}
        assert len(db.frame()) == 3 and db.archived() == 0
        assert db.prune_stale(new) == {"default": 2}
        assert list(db.frame()["median_us"]) == [12.0] and db.archived() == 2
        current, skipped = db.current_frame(new.digest(), "default")
        assert list(current["median_us"]) == [12.0] and skipped == 0
        assert db.prune_stale(new) == {}


def test_another_cpus_rows_are_neither_current_nor_stale_and_prune_keeps_them(tmp_path):
    from hwface.latency.fingerprint import Fingerprint

    cpu = '{{"host": null, "target": {{"kind": "llvm", "mcpu": "{}", "num-cores": 2}}}}'
    intel = Fingerprint("host", cpu.format("rocketlake"), "0.27.0.post1", "0.4.0", 2)
    amd = Fingerprint("host", cpu.format("znver3"), "0.27.0.post1", "0.4.0", 2)
    amd_old = Fingerprint("host", cpu.format("znver3"), "0.27.0.post1", "0.3.0", 2)
    assert "mcpu=znver3 2 cores" in amd.describe()
    with LatencyStore(tmp_path / "db.sqlite") as db:
        db.add([_m(0, fingerprint=intel), _m(1, fingerprint=amd), _m(2, fingerprint=amd_old)])
        assert db.stale_counts(amd) == {"default": {"current": 1, "stale": 1, "other device": 1}}
        assert db.prune_stale(amd) == {"default": 1}
        assert sorted(db.frame()["median_us"]) == [10.0, 11.0]
        assert db.stale_counts(intel) == {"default": {"current": 1, "stale": 0, "other device": 1}}
        assert db.prune_stale(intel) == {}


def test_current_frame_leaves_out_stale_and_heldout_rows(tmp_path):
    from hwface.latency.fingerprint import Fingerprint

    old = Fingerprint("host", "{}", "0.27.0.post1", "0.3.0", 1)
    new = Fingerprint("host", "{}", "0.27.0.post1", "0.4.0", 2)
    with LatencyStore(tmp_path / "db.sqlite") as db:
        db.add([_m(0, fingerprint=old), _m(2, fingerprint=new), _m(3, fingerprint=new, split="heldout")])
        frame, skipped = db.current_frame(new.digest(), "default")
        assert list(frame["median_us"]) == [12.0] and skipped == 1
        every, _ = db.current_frame(new.digest(), "default", split=None)
        assert sorted(every["median_us"]) == [12.0, 13.0]


def test_schema_1_sampler_marks_become_per_fingerprint_and_replaced_marks_come_back(tmp_path):
    from hwface.latency.store import MIGRATION_1, SCHEMA_V0

    path = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V0 + ";" + MIGRATION_1 + "; PRAGMA user_version = 1;")
    conn.execute("INSERT INTO fingerprints VALUES ('intel', '{}'), ('amd', '{}')")
    for fp, us in (("intel", 5.0), ("amd", 7.0)):  # the config measured on both devices ...
        conn.execute("INSERT INTO measurements (id, key, target, device_key, tvm_version, hwface_version, tuned, "
                     "regime, median_us, p10_us, p90_us, cv, samples, source, measured_at, fingerprint) VALUES "
                     f"('{fp}-row', 'k', 'host', 'host', 'x', 'y', 0, 'default', {us}, {us}, {us}, 0, 5, 'sample:c1',"
                     " '2026-01-01T00:00:00Z', ?)", (fp,))
    conn.execute("INSERT INTO layers (key, op, fused, input_shapes, output_shape) VALUES ('k', 'conv', '', '', '')")
    conn.execute("INSERT INTO sample_configs VALUES ('c1', 'host', 'default', 'host', 'conv', "  # ... one mark left
                 "'{\"cin\": 8, \"latency_us\": 7.0}', 'done', 1, NULL, 'now', 'amd')")
    conn.commit()
    conn.close()
    with LatencyStore(path) as db:
        assert db.migrated_from == 1
        assert db.config_done("host", "default", "host", "intel") == {"c1"}
        assert db.config_done("host", "default", "host", "amd") == {"c1"}
        assert db.sampled_configs("host", "default", "host", "intel") == [({"cin": 8}, 5.0)]
        db.mark_configs([("c1", "host", "default", "host", "conv", {"cin": 8, "latency_us": 7.5}, "done", 1, None)],
                        "amd")
        assert db.sampled_configs("host", "default", "host", "intel") == [({"cin": 8}, 5.0)]  # not replaced


def test_db_migrate_brings_an_old_file_to_this_schema_and_the_read_only_path_names_it(tmp_path, cli):
    """`hwface db migrate` is the one command that upgrades a file a read-only open refuses."""
    from hwface.latency.store import SCHEMA_V0, SCHEMA_VERSION

    old = tmp_path / "v0.sqlite"
    sqlite3.connect(old).executescript(SCHEMA_V0)
    refused = pytest.raises(HwfaceError, LatencyStore, old, read_only=True)
    assert "hwface db migrate" in str(refused.value)
    res = cli("db", "migrate", "--db", old, "--format", "json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["schema_before"] == 0
    assert cli("db", "migrate", "--db", old).out.strip().endswith(f"already schema {SCHEMA_VERSION}")
    with LatencyStore(old, read_only=True) as db:
        assert db.migrated_from == SCHEMA_VERSION


def test_the_shipped_databases_are_at_this_schema():
    """An installed hwface reads its shipped databases read-only, so they ship migrated."""
    from pathlib import Path

    from hwface.latency.store import SCHEMA_VERSION

    for path in sorted((Path(__file__).resolve().parents[2] / "latency_db").glob("*.sqlite")):
        version = sqlite3.connect(f"file:{path}?mode=ro", uri=True).execute("PRAGMA user_version").fetchone()[0]
        assert version == SCHEMA_VERSION, f"{path.name}: run `hwface db migrate --db latency_db/{path.name}`"


def _network(name: str, fingerprint: str, regime: str = "tuned", median_us: float = 100.0):
    from hwface.latency.store import NetworkMeasurement

    return NetworkMeasurement(name=name, origin="zoo", target="host", device_key="host", regime=regime,
                              fingerprint=fingerprint, split="heldout", kernel_calls=2, kernel_sum_us=90.0,
                              median_us=median_us, p10_us=median_us, p90_us=median_us, cv=0.0, samples=5,
                              kernels=[[_key(0).to_str(), 2]])


def test_archive_network_moves_one_networks_rows_of_one_fingerprint_and_regime(tmp_path):
    """A network measured again: its end-to-end and kernel rows of that fingerprint and regime move, nothing else."""
    from hwface.latency.fingerprint import Fingerprint

    fp, other = (Fingerprint("host", "{}", "0.27.0.post1", "0.4.0", t) for t in (2, 1))
    tuned = dict(regime="tuned", tuned=True, trials_per_kernel=16)
    with LatencyStore(tmp_path / "db.sqlite") as db:
        db.add([_m(0, source="net_a", fingerprint=fp, **tuned), _m(1, source="net_a", fingerprint=fp, **tuned),
                _m(2, source="net_b", fingerprint=fp, **tuned), _m(3, source="net_a", fingerprint=other, **tuned),
                _m(4, source="net_a", fingerprint=fp)])
        for name, f in (("net_a", fp), ("net_b", fp), ("net_a", other)):
            db.add_network(_network(name, f.digest()))
        assert db.archive_network("net_a", "tuned", fp.digest(), dry_run=True) == {"measurements": 2, "networks": 1}
        assert (db.archived(), db.archived("networks")) == (0, 0)
        assert db.archive_network("net_a", "tuned", fp.digest()) == {"measurements": 2, "networks": 1}
        assert (db.archived(), db.archived("networks")) == (2, 1)
        assert sorted(db.frame()["median_us"]) == [12.0, 13.0, 14.0]
        left = db.networks_frame()
        assert sorted(zip(left["name"], left["fingerprint"])) == sorted([("net_b", fp.digest()),
                                                                        ("net_a", other.digest())])
        assert not db.network_done("net_a", "tuned", "host", fp.digest())
        why = db._conn.execute("SELECT DISTINCT archived_why FROM archived_networks").fetchall()
        assert [r[0] for r in why] == ["measured again: net_a"]
        assert db.archive_network("net_a", "tuned", fp.digest()) == {"measurements": 0, "networks": 0}


def test_db_prune_network_archives_it_and_an_unknown_network_is_one_line(tmp_path, cli):
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.targets import load_target

    today = current_fingerprint(load_target("host"))
    path = tmp_path / "db.sqlite"
    with LatencyStore(path) as db:
        db.add([_m(0, source="net_a", fingerprint=today, regime="tuned", tuned=True, trials_per_kernel=16)])
        db.add_network(_network("net_a", today.digest()))
    dry = cli("db", "prune", "--network", "net_a", "--db", path, "--dry-run", "--format", "json")
    assert dry.code == 0, dry.err
    assert json.loads(dry.out)["moved"] == {"measurements": 1, "networks": 1}
    res = cli("db", "prune", "--network", "net_a", "--db", path)
    assert res.code == 0 and "1 end-to-end row(s), 1 kernel row(s)" in res.out
    assert_one_line_error(cli("db", "prune", "--network", "net_a", "--db", path), "nothing to archive")
    assert cli("db", "prune", "--db", path).code == 2  # --stale or --network is required
    stats = json.loads(cli("db", "stats", "--db", path, "--format", "json").out)
    assert (stats["archived"], stats["archived_networks"]) == (1, 1)
