"""A user's tunes start from the shipped records, reuse them, and write only the user's logs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hwface import data_dirs
from hwface.targets import load_target
from hwface.tune import logs
from hwface.tune.tuner import tune

pytestmark = pytest.mark.slow


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != logs.LOCK_FILE}


def test_a_users_tune_reuses_the_shipped_records_and_leaves_them_alone(tiny_a, tmp_path, monkeypatch, cli):
    shipped = tmp_path / "shipped"
    monkeypatch.setenv("HWFACE_TUNING_LOGS", str(shipped / "tuning_logs"))  # a maintainer tuning the shipped set
    first = tune(onnx_path=tiny_a, target="host", trials=6, trials_per_kernel=2, show_progress=False)
    assert first.trials_run > 0

    targets = data_dirs.shipped_dir("targets")
    monkeypatch.setattr(data_dirs, "shipped_dir", lambda name: targets if name == "targets" else shipped / name)
    monkeypatch.delenv("HWFACE_TUNING_LOGS")
    monkeypatch.setenv("HWFACE_HOME", str(tmp_path / "home"))
    before = _digest(shipped)
    spec = load_target("host")
    assert logs.status(spec).path == shipped / "tuning_logs" / "host" / logs.cpu_id(spec)  # read in place

    built = cli("compile", "--onnx", tiny_a, "-o", tmp_path / "art", "--format", "json")
    assert built.code == 0, built.err
    assert json.loads(built.out)["tuned_kernels"] > 0 and not (tmp_path / "home").exists()

    again = tune(onnx_path=tiny_a, target="host", trials=6, trials_per_kernel=2, show_progress=False)
    done = {k.name for k in first.kernels if k.records >= 2}
    assert done and {k.name for k in again.kernels if k.reused} == done  # the shipped records count
    assert all(k.trials_this_run == 0 for k in again.kernels if k.name in done)
    mine = Path(again.logs_dir)
    assert mine.is_relative_to(tmp_path / "home") and (mine / logs.RECORD_FILE).exists()
    assert _digest(shipped) == before
