"""Trimming a budget's logs back to K + 1 records a kernel (after two budget tunes overlapped)."""

from __future__ import annotations

import json

from hwface.tune.logs import RECORD_FILE, trim_to_budget


def test_each_workload_keeps_its_first_records_in_log_order(tmp_path):
    lines = [[w, {"trial": i}] for i in range(5) for w in (0, 1)] + [[2, {"trial": 0}]]
    (tmp_path / RECORD_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert trim_to_budget(tmp_path, 3) == 4  # workloads 0 and 1 had 5 each
    kept = [json.loads(line) for line in (tmp_path / RECORD_FILE).read_text().splitlines()]
    assert [(w, r["trial"]) for w, r in kept] == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 0)]
    assert trim_to_budget(tmp_path, 3) == 0 and trim_to_budget(tmp_path / "missing", 3) == 0
