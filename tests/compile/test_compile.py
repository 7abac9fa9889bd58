"""Compile: every zoo network for the host matches PyTorch; cross-compiled artifacts are AArch64 ELF."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

from hwface.compile import compile_artifact, load_artifact
from hwface.compile.artifact import ArtifactError
from hwface.compile.elf import elf_machine
from hwface.export import outputs_match
from hwface.measure.local_run import load_input, run_local
from hwface.models import create_model
from tests.conftest import assert_one_line_error
from tests.zoo_sweep import swept_models


@pytest.mark.slow  # the zoo sweep
@pytest.mark.parametrize("name", swept_models())
def test_host_artifact_matches_pytorch(name, tmp_path):
    art = compile_artifact(tmp_path / name, target="host", model=name)
    m = art.manifest
    assert m.so_sha256 and m.model == name and m.target_name == "host" and m.kernels > 0
    assert (tmp_path / name / "model.onnx").is_file()
    assert elf_machine(art.so_path) == "x86_64"
    result = run_local(art.directory, timed=False)
    x = load_input(art, None)
    with torch.no_grad():
        ref = create_model(name, input_size=tuple(m.input["shape"][2:]))(torch.from_numpy(x)).numpy()
    assert result.output.shape == ref.shape == tuple(m.output["shape"])
    assert outputs_match(result.output, ref), float(np.abs(result.output - ref).max())


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None, reason="needs `make sysdeps`")
def test_linux_arm64_artifact_is_aarch64_elf(tmp_path):
    art = compile_artifact(tmp_path / "a", target="linux-arm64", model="mobilefacenet")
    assert elf_machine(art.so_path) == "aarch64"
    assert art.manifest.target["mtriple"] == "aarch64-linux-gnu"


# What a TVM kernel library may leave for the process that loads it: libc/libm and the TVM runtime.
LIBC_LIBM = {"memcpy", "memset", "memmove", "malloc", "free", "expf", "exp", "logf", "log", "powf", "pow",
             "tanhf", "tanh", "sqrtf", "sqrt", "erff", "erf", "fmaxf", "fminf", "roundf", "floorf", "ceilf"}


def undefined_symbols(so) -> set[str]:
    out = subprocess.run(["nm", "-D", "--undefined-only", str(so)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("ld.lld") is None, reason="needs `make sysdeps`")
def test_android_arm64_links_without_the_ndk(tmp_path, monkeypatch):
    monkeypatch.delenv("TVM_NDK_CC", raising=False)
    art = compile_artifact(tmp_path / "a", target="android-arm64", model="mobilefacenet")
    assert elf_machine(art.so_path) == "aarch64"
    assert art.manifest.linker.startswith("clang-lld: ") and "--target=aarch64-linux-android28" in art.manifest.linker
    left = undefined_symbols(art.so_path)
    assert "memcpy" in left and all(s in LIBC_LIBM or s.startswith("TVM") for s in left), left


def test_android_without_clang_says_how_to_get_it(cli_proc, tmp_path):
    res = cli_proc("compile", "--model", "mobilefacenet", "--target", "android-arm64", "-o", tmp_path / "a",
                   env={"TVM_NDK_CC": "", "PATH": str(tmp_path)})
    assert_one_line_error(res, "clang + lld", "apt-get install clang lld", "TVM_NDK_CC")


def test_android_with_a_missing_ndk_compiler_is_named(cli_proc, tmp_path):
    res = cli_proc("compile", "--model", "mobilefacenet", "--target", "android-arm64", "-o", tmp_path / "a",
                   env={"TVM_NDK_CC": str(tmp_path / "nowhere-clang++")})
    assert_one_line_error(res, "nowhere-clang++", "does not exist")


def test_mali_artifact_holds_an_opencl_kernel_per_fused_kernel(mali_artifact):
    from hwface.compile.build import kernels_left
    from hwface.compile.network import fused_module, load_network
    from hwface.compile.slice_views import uses_views
    from hwface.targets import load_target

    spec = load_target("android-mali")
    assert elf_machine(mali_artifact.so_path) == "aarch64"
    fused = fused_module(load_network("mobilefacenet", None, None, None), spec)
    expected = kernels_left(fused, uses_views(spec.tvm_target()))
    opencl = {n.decode() for n in re.findall(rb"__kernel void (\w+)_kernel\(", mali_artifact.so_path.read_bytes())}
    assert opencl == expected and len(expected) == mali_artifact.manifest.kernels > 20


def test_missing_cross_compiler_named(cli_proc, tmp_path):
    target = tmp_path / "odd.toml"
    target.write_text('description = "x"\nkind = "cpu"\nrpc_key = "odd"\ncross_compiler = "riscv64-nowhere-g++"\n'
                      '[target]\nkind = "llvm"\nmtriple = "riscv64-linux-gnu"\n')
    res = cli_proc("compile", "--model", "mobilefacenet", "--target", target, "-o", tmp_path / "a")
    assert_one_line_error(res, "riscv64-nowhere-g++")


@pytest.fixture(scope="module")
def host_artifact(tmp_path_factory):
    return compile_artifact(tmp_path_factory.mktemp("art") / "mfn", target="host", model="mobilefacenet")


def test_run_cli_reports_latency_and_check(cli, host_artifact):
    res = cli("run", host_artifact.directory, "--check", "--format", "json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["check"]["match"] and report["check"]["reference"] == "PyTorch"
    assert report["latency_ms"]["median"] > 0 and report["latency_ms"]["samples"] >= 5
    assert report["output"]["shape"] == [1, 128] and report["output"]["l2_norm"] > 0


def test_run_with_input_file(cli, host_artifact, tmp_path):
    x = np.random.default_rng(3).standard_normal((1, 3, 112, 112)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    res = cli("run", host_artifact.directory, "--input", tmp_path / "x.npy", "--check")
    assert res.code == 0 and "match" in res.out
    np.save(tmp_path / "bad.npy", x[:, :, :100])
    assert_one_line_error(cli("run", host_artifact.directory, "--input", tmp_path / "bad.npy"), "expects")


def test_tampered_so_is_refused(cli_proc, host_artifact, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(host_artifact.directory, copy)
    data = bytearray((copy / "model.so").read_bytes())
    data[-100] ^= 0xFF
    (copy / "model.so").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match"):
        load_artifact(copy)
    assert_one_line_error(cli_proc("run", copy), "refusing")


def test_foreign_arch_artifact_is_refused_here(tmp_path):
    if shutil.which("aarch64-linux-gnu-g++") is None:
        pytest.skip("needs `make sysdeps`")
    art = compile_artifact(tmp_path / "arm", target="linux-arm64", model="mobilefacenet_s")
    with pytest.raises(Exception, match="aarch64"):
        run_local(art.directory)
