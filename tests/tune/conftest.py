"""Tiny real networks for tuning tests, and a private tuning-logs folder per test."""

from __future__ import annotations

from pathlib import Path

import pytest

import torch
from torch import nn


def _export(net: nn.Module, path: Path) -> Path:
    torch.manual_seed(0)
    torch.onnx.export(net.eval(), (torch.randn(1, 3, 32, 32),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["embedding"])
    return path


def stem() -> list[nn.Module]:
    return [nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU()]


@pytest.fixture(scope="session")
def tiny_a(tmp_path_factory) -> Path:
    """stem conv + pointwise conv + global pool: three kernels."""
    net = nn.Sequential(*stem(), nn.Conv2d(8, 16, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return _export(net, tmp_path_factory.mktemp("tiny") / "tiny_a.onnx")


@pytest.fixture(scope="session")
def tiny_b(tmp_path_factory) -> Path:
    """tiny_a with a depthwise conv inserted: shares every kernel of tiny_a, adds one."""
    net = nn.Sequential(*stem(), nn.Conv2d(8, 8, 3, 1, 1, groups=8), nn.ReLU(), nn.Conv2d(8, 16, 1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return _export(net, tmp_path_factory.mktemp("tiny") / "tiny_b.onnx")


@pytest.fixture
def tuning_logs(tmp_path, monkeypatch) -> Path:
    """Point hwface at an empty tuning-logs folder (never the repo's)."""
    path = tmp_path / "tuning_logs"
    monkeypatch.setenv("HWFACE_TUNING_LOGS", str(path))
    return path


def assert_every_record_replays(folder: Path) -> int:
    """Open the tuning database in ``folder`` as MetaSchedule does (which replays every record on its
    workload) and replay each once more; returns the record count."""
    import json

    import tvm
    from tvm.s_tir import meta_schedule as ms

    from hwface.tune import logs

    lines = [json.loads(line) for line in (folder / logs.RECORD_FILE).read_text().splitlines()]
    workloads = (folder / logs.WORKLOAD_FILE).read_text().splitlines()
    assert all(0 <= idx < len(workloads) for idx, _ in lines)
    database = ms.database.JSONDatabase(path_workload=str(folder / logs.WORKLOAD_FILE),
                                        path_tuning_record=str(folder / logs.RECORD_FILE))
    records = database.get_all_tuning_records()
    assert len(records) == len(lines)
    for r in records:  # a record filed under another kernel's workload does not replay on it
        r.trace.apply_to_schedule(tvm.s_tir.Schedule(r.workload.mod), remove_postproc=False)
    return len(records)
