"""Several devices under one key: a tune measures on all of them at once."""

from __future__ import annotations

import re

import pytest

from hwface.rpc.embedded import embedded_device
from hwface.tune.tuner import tune

pytestmark = pytest.mark.slow  # a tune over several RPC servers


def test_tune_measures_on_every_device_under_the_key(tiny_b, tuning_logs, tmp_path):
    logs = tmp_path / "rpc-logs"
    with embedded_device(key="pair", n_servers=2, log_dir=logs) as ep:
        report = tune(onnx_path=tiny_b, target="host", trials=8, trials_per_kernel=2, tracker=ep.tracker,
                      key="pair", show_progress=False)
    assert report.stopped is None and report.trials_run >= 4
    server_logs = sorted(logs.glob("server-pair-*.log"))
    assert len(server_logs) == 2
    sessions = [len(re.findall(r"connected from", p.read_text())) for p in server_logs]
    assert all(n > 0 for n in sessions), sessions  # both servers measured candidates
