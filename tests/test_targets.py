"""Targets as files: every shipped target loads; malformed files name the file and the field."""

from __future__ import annotations

import json

import pytest

from hwface.targets import TargetError, list_targets, load_target
from tests.conftest import assert_one_line_error

SHIPPED = {"host", "android-arm64", "linux-arm64", "android-mali", "android-adreno", "linux-mali"}


def test_shipped_targets_load():
    assert SHIPPED <= set(list_targets())
    for name in list_targets():
        spec = load_target(name)
        assert spec.tvm_target() is not None
        assert spec.rpc_key


def test_host_detects_cpu_and_cores():
    spec = load_target("host")
    assert spec.target["mcpu"] != "auto" and isinstance(spec.target["num-cores"], int)
    assert spec.is_host and spec.tracker is None


def test_gpu_targets_have_an_aarch64_host():
    for name in ("android-mali", "android-adreno", "linux-mali"):
        spec = load_target(name)
        assert spec.kind == "gpu" and spec.target["kind"] == "opencl"
        assert spec.triple().startswith("aarch64")


@pytest.mark.parametrize(
    "body, field",
    [
        ('description = "x"\nkind = "cpu"\n[target]\nkind = "llvm"\n', "rpc_key"),
        ('description = "x"\nkind = "tpu"\nrpc_key = "k"\n[target]\nkind = "llvm"\n', "kind"),
        ('description = "x"\nkind = "cpu"\nrpc_key = "k"\napi_level = 7\n[target]\nkind = "llvm"\n', "api_level"),
        ('description = "x"\nkind = "cpu"\nrpc_key = "k"\ntracker = "nohost"\n[target]\nkind = "llvm"\n', "tracker"),
        ('description = "x"\nkind = "gpu"\nrpc_key = "k"\n[target]\nkind = "opencl"\n', "host"),
        ('description = "x"\nkind = "cpu"\nrpc_key = "k"\ncolour = 1\n[target]\nkind = "llvm"\n', "colour"),
        ('description = "x"\nkind = "cpu"\nrpc_key = "k"\n[target]\nkind = "nosuchkind"\n', "target"),
    ],
)
def test_malformed_target_names_file_and_field(tmp_path, body, field):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(TargetError) as err:
        load_target(path)
    assert str(path) in str(err.value) and f"'{field}'" in str(err.value)


def test_unreadable_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("kind = = cpu")
    with pytest.raises(TargetError, match="broken.toml"):
        load_target(path)


def test_targets_json(cli):
    res = cli("targets", "--format", "json")
    rows = json.loads(res.out)
    assert res.code == 0 and SHIPPED <= {r["name"] for r in rows}
    for r in rows:
        assert {"name", "kind", "rpc_key", "cross_compiler", "description"} <= set(r)


def test_unknown_target_is_one_line_error(cli_proc):
    assert_one_line_error(cli_proc("compile", "--model", "mobilefacenet", "--target", "linux-arm6"),
                          "unknown target", "linux-arm64")
