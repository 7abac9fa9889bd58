"""Zoo variants are measured by name; a bad name fails before anything is tuned."""

from __future__ import annotations

import pytest

from hwface.errors import HwfaceError


def test_a_bad_variant_name_fails_before_any_measurement(latency_db, tmp_path, monkeypatch):
    from hwface.workflows.variants import measure_variants

    monkeypatch.setenv("HWFACE_TUNING_LOGS", str(tmp_path / "tuning_logs"))
    with pytest.raises(HwfaceError, match="is not a variant"):
        measure_variants(["seesaw_share@act=relu", "seesaw_share@act=gelu"])
    assert not (tmp_path / "tuning_logs").exists() and not latency_db.exists()
