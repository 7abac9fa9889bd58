"""`hwface run` on devices hwface starts itself: the embedded host device and the emulated AArch64 one."""

from __future__ import annotations

import json

import pytest

from tests.conftest import assert_one_line_error


def test_run_host_artifact_over_embedded_rpc(rpc_host_artifact, cli):
    res = cli("run", rpc_host_artifact, "--rpc", "--check", "--format", "json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["device"].startswith("host@127.0.0.1:") and not report["emulated"]
    assert report["check"]["match"] and report["latency_ms"]["median"] > 0


@pytest.mark.slow  # the emulated device
def test_run_by_key_starts_the_emulated_device(emulated_root, rpc_arm64_artifact, cli):
    res = cli("run", rpc_arm64_artifact, "--key", "arm64-qemu", "--check", "--timeout", "300")
    assert res.code == 0, res.err
    assert "arm64-qemu@127.0.0.1:" in res.out and "not meaningful" in res.out and "-> match" in res.out


def test_run_by_key_of_a_phone_needs_a_tracker(rpc_host_artifact, cli):
    assert_one_line_error(cli("run", rpc_host_artifact, "--key", "android-arm64"), "--tracker")
