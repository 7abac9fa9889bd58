"""Shipped data is only read; a user's runs write to the user's data folder, started from the shipped data."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from hwface import data_dirs
from hwface.latency.store import LatencyStore, read_path
from hwface.targets import load_target
from hwface.tune import logs
from tests.latency.test_store import _m


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    """A shipped data root in tmp_path (what a wheel's hwface/shipped/ holds), and no override variables."""
    root = tmp_path / "shipped"
    shutil.copytree(data_dirs.shipped_dir("targets"), root / "targets")
    for name in ("tuning_logs", "latency_db"):
        (root / name).mkdir(parents=True)
    monkeypatch.setattr(data_dirs, "shipped_dir", lambda name: root / name)
    for env in data_dirs.OVERRIDE_ENV.values():
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("HWFACE_HOME", str(tmp_path / "home"))
    return root


def _ship_rows(shipped: Path, n: int = 5) -> Path:
    path = shipped / "latency_db" / "host.sqlite"
    with LatencyStore(path) as db:
        db.add(_m(i) for i in range(n))
    (shipped / "latency_db" / "host.sqlite-wal").unlink(missing_ok=True)
    return path


def test_the_shipped_database_is_read_in_place_and_never_written(shipped, cli):
    path = _ship_rows(shipped)
    before = path.read_bytes()
    assert read_path("host") == path
    with LatencyStore.for_reading("host") as db:
        assert db.read_only and len(db.frame()) == 5
    res = cli("db", "stats", "--target", "host", "--format", "json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["measurements"] == 5
    assert path.read_bytes() == before and not (shipped.parent / "home").exists()


def test_the_first_write_starts_the_users_copy_from_the_shipped_rows(shipped):
    path = _ship_rows(shipped)
    before = path.read_bytes()
    with LatencyStore.for_writing("host") as db:
        assert db.path == data_dirs.user_home() / "latency_db" / "host.sqlite"
        db.add([_m(100, source="mine")])
    assert path.read_bytes() == before
    assert read_path("host") == data_dirs.user_home() / "latency_db" / "host.sqlite"
    with LatencyStore.for_reading("host") as db:
        assert not db.read_only and len(db.frame()) == 6  # the shipped rows first-class, the user's added


def test_an_override_folder_is_the_only_one(shipped, tmp_path, monkeypatch):
    _ship_rows(shipped)
    monkeypatch.setenv("HWFACE_LATENCY_DB", str(tmp_path / "mine"))
    assert read_path("host") == tmp_path / "mine" / "host.sqlite"
    with LatencyStore.for_writing("host") as db:
        assert db.frame().empty  # nothing seeded: the override names the whole database


def test_a_trained_predictor_goes_to_the_user_and_a_shipped_one_is_found(shipped):
    from hwface.latency.predictor import predictor_dir

    shipped_pred = shipped / "latency_db" / "host.default.abc.predictor"
    shipped_pred.mkdir()
    assert predictor_dir("host", "default", "abc") == shipped_pred
    mine = predictor_dir("host", "default", "abc", write=True)
    assert mine == data_dirs.user_home() / "latency_db" / shipped_pred.name
    mine.mkdir(parents=True)
    assert predictor_dir("host", "default", "abc") == mine


def _ship_logs(shipped: Path, spec) -> Path:
    """A shipped logs folder for the host (two JSON-lines files; their content is not parsed here)."""
    folder = shipped / "tuning_logs" / spec.name / logs.cpu_id(spec)
    folder.mkdir(parents=True)
    (folder / logs.WORKLOAD_FILE).write_text('["0x1", "w"]\n')
    (folder / logs.RECORD_FILE).write_text('[0, {"r": 1}]\n[0, {"r": 2}]\n')
    return folder


def test_reads_of_empty_user_logs_go_to_the_shipped_ones_and_a_tune_starts_from_a_copy(shipped):
    spec = load_target("host")
    folder = _ship_logs(shipped, spec)
    before = _digest(shipped)
    mine = logs.logs_dir(spec)
    assert mine.is_relative_to(data_dirs.user_home())
    st = logs.status(spec)
    assert st.path == folder and st.records == 2 and not mine.exists()
    assert logs.seed_from_shipped(mine) and (mine / logs.RECORD_FILE).read_bytes() == (folder / logs.RECORD_FILE).read_bytes()
    assert not logs.seed_from_shipped(mine)  # once only: the user's records are theirs from then on
    with (mine / logs.RECORD_FILE).open("a") as f:
        f.write('[0, {"r": 3}]\n')
    st = logs.status(spec)
    assert st.path == mine and st.records == 3
    assert _digest(shipped) == before


def test_other_cpus_count_shipped_and_user_folders(shipped):
    spec = load_target("host")
    _ship_logs(shipped, spec)
    (shipped / "tuning_logs" / "host" / "shipped-cpu_x_2c").mkdir()
    (data_dirs.user_home() / "tuning_logs" / "host" / "my-cpu_y_4c").mkdir(parents=True)
    assert logs.status(spec).other_cpus == ("my-cpu_y_4c", "shipped-cpu_x_2c")

