"""The emulated AArch64 device: mirror from apt's configuration, the cached root, and mobilefacenet
compiled for linux-arm64 run under qemu and compared with PyTorch."""

from __future__ import annotations

import json
import shutil

import pytest

from hwface.rpc.emulate import EmulationError, debian_mirror
from tests.conftest import assert_one_line_error

pytestmark = pytest.mark.slow  # the emulated AArch64 device (qemu)


def test_mirror_from_deb822_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("HWFACE_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("HWFACE_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64] https://other.example/apt stable contrib\n"
        "deb [signed-by=/k.gpg] http://ftp.example/debian bookworm main contrib\n")
    assert debian_mirror(tmp_path) == "http://ftp.example/debian"
    monkeypatch.setenv("HWFACE_DEBIAN_MIRROR", "http://override.example/debian/")
    assert debian_mirror(tmp_path) == "http://override.example/debian"


def test_no_mirror_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("HWFACE_DEBIAN_MIRROR", raising=False)
    with pytest.raises(EmulationError, match="HWFACE_DEBIAN_MIRROR"):
        debian_mirror(tmp_path)


def test_root_is_prepared_once(emulated_root, cli):
    info = emulated_root.info()
    assert info["tvm_version"] == "0.27.0.post1" and info["tvm_ffi_version"] == "0.1.14.post1"
    assert (emulated_root.site / "tvm_ffi" / "lib" / "libtvm_ffi_testing.so").exists()
    assert emulated_root.runtime_extra.exists()
    res = cli("device", "emulate", "--prepare-only")  # cached: returns at once
    assert res.code == 0 and "ready" in res.out


@pytest.fixture(scope="module")
def emulated(emulated_root, tmp_path_factory):
    from hwface.rpc.emulate import emulated_device

    with emulated_device(log_dir=tmp_path_factory.mktemp("emu")) as ep:
        yield ep


def test_emulated_device_registers(emulated, cli):
    res = cli("devices", "--tracker", emulated.tracker, "--format", "json")
    assert res.code == 0, res.err
    assert [(r["key"], r["total"]) for r in json.loads(res.out)] == [("arm64-qemu", 1)]


def _assert_matches_pytorch(result, artifact) -> None:
    import numpy as np
    import torch

    from hwface.compile.artifact import load_artifact
    from hwface.measure.local_run import load_input
    from hwface.models import create_model

    assert result.emulated and result.latency is None
    assert result.device_info["machine"] == "aarch64"
    x = load_input(load_artifact(artifact), None)
    with torch.no_grad():
        ref = create_model("mobilefacenet")(torch.from_numpy(x)).numpy()
    assert float(np.abs(result.output - ref).max()) <= 1e-4


def test_mobilefacenet_runs_emulated_and_matches_pytorch(emulated, rpc_arm64_artifact, cli):
    from hwface.measure.remote_run import run_remote

    _assert_matches_pytorch(run_remote(rpc_arm64_artifact, emulated.tracker, "arm64-qemu", timeout_s=300),
                            rpc_arm64_artifact)
    res = cli("run", rpc_arm64_artifact, "--tracker", emulated.tracker, "--key", "arm64-qemu", "--check")
    assert res.code == 0, res.err
    assert "emulated" in res.out and "latency: median" not in res.out
    assert "match" in res.out


def test_android_linked_so_runs_emulated(emulated, tmp_path, monkeypatch):
    """clang + lld's Android .so (no NDK) loads and runs under glibc's loader: it needs only memcpy."""
    from hwface.compile.artifact import compile_artifact
    from hwface.measure.remote_run import run_remote

    if shutil.which("clang") is None or shutil.which("ld.lld") is None:
        pytest.skip("clang + lld missing: make sysdeps")
    monkeypatch.delenv("TVM_NDK_CC", raising=False)
    art = compile_artifact(tmp_path / "mfn-android", target="android-arm64", model="mobilefacenet")
    assert art.manifest.linker.startswith("clang-lld")
    _assert_matches_pytorch(run_remote(art.directory, emulated.tracker, "arm64-qemu", timeout_s=300), art.directory)


def test_x86_so_is_refused(emulated, rpc_host_artifact, cli):
    res = cli("run", rpc_host_artifact, "--tracker", emulated.tracker, "--key", "arm64-qemu")
    assert_one_line_error(res, "x86_64", "aarch64", "arm64-qemu@")


def test_gpu_artifact_on_a_device_without_the_gpu_is_refused(emulated, mali_artifact, cli):
    res = cli("run", mali_artifact.directory, "--tracker", emulated.tracker, "--key", "arm64-qemu")
    assert_one_line_error(res, "arm64-qemu@", "has no opencl GPU")
