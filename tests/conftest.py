"""Shared fixtures: run the CLI in-process or as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """Under pytest-xdist, each of the two workers runs PyTorch on one thread: two workers with two
    OpenMP threads each on 2 cores spin against each other (a forward pass of dw_seesaw_v1 took 13 s)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``hwface ARGS...`` in-process; returns exit code, stdout, stderr."""
    from hwface.cli.main import main

    def run(*args: str) -> CliResult:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse errors
            code = exc.code
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_proc():
    """Run ``hwface ARGS...`` as a real subprocess (what a user's shell sees)."""

    def run(*args: str, timeout: float = 600, env: dict | None = None) -> CliResult:
        full_env = {**os.environ, **(env or {})}
        p = subprocess.run([sys.executable, "-m", "hwface.cli.main", *map(str, args)], capture_output=True,
                           text=True, timeout=timeout, env=full_env, cwd=REPO)
        return CliResult(p.returncode, p.stdout, p.stderr)

    return run


def assert_one_line_error(res: CliResult, *fragments: str) -> None:
    """Exit code 2, a one-line `hwface: error:` as the last stderr line (after any progress), no traceback."""
    assert res.code == 2, (res.code, res.err)
    lines = [line for line in res.err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("hwface: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], res.err
    assert "Traceback" not in res.err
    for f in fragments:
        assert f in errors[0], (f, errors[0])


@pytest.fixture(scope="session")
def quick_guard():
    """A drift guard for the host that re-measures once, without long rests (tests only).

    It does not watch other processes' CPU time: the suite's second pytest worker is one.
    """
    from hwface.measure.drift import DriftGuard
    from hwface.targets import load_target

    return DriftGuard(load_target("host"), max_attempts=2, rests_s=(0.1,), min_repeat_ms=5, max_foreign_cores=None)


@pytest.fixture(scope="session", autouse=True)
def user_home(tmp_path_factory):
    """A private user data folder ($HWFACE_HOME) for the whole run: tests never write the real one."""
    home = tmp_path_factory.mktemp("hwface-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HWFACE_HOME", str(home))
        yield home


@pytest.fixture
def latency_db(tmp_path, monkeypatch):
    """A private latency database folder ($HWFACE_LATENCY_DB): tests never write the repo's latency_db/."""
    d = tmp_path / "latency_db"
    monkeypatch.setenv("HWFACE_LATENCY_DB", str(d))
    return d


@pytest.fixture(scope="session")
def trained_fixture_folder(tmp_path_factory):
    """A latency folder holding the synthetic fixture database (tests/latency/synthetic.py) and its trained
    host/default predictor, built once per run; read-only for the tests that use it."""
    from tests.latency.synthetic import fill_fixture_db

    folder = tmp_path_factory.mktemp("trained") / "latency_db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HWFACE_LATENCY_DB", str(folder))
        fill_fixture_db()
        from hwface.workflows.predict import train

        train("host", "default")
    return folder


@pytest.fixture
def fixture_model(trained_fixture_folder, monkeypatch):
    """The LatencyModel of the trained fixture folder (``$HWFACE_LATENCY_DB`` points at it)."""
    from hwface.nas.lookup import LatencyModel

    monkeypatch.setenv("HWFACE_LATENCY_DB", str(trained_fixture_folder))
    return LatencyModel.load("host", "default")


@pytest.fixture(scope="session")
def mali_artifact(tmp_path_factory):
    """mobilefacenet compiled for android-mali: OpenCL kernels and an AArch64 host part linked with clang + lld."""
    import shutil

    from hwface.compile.artifact import compile_artifact

    if shutil.which("clang") is None or shutil.which("ld.lld") is None:
        pytest.skip("clang + lld missing: make sysdeps")
    env = os.environ.pop("TVM_NDK_CC", None)
    try:
        return compile_artifact(tmp_path_factory.mktemp("art") / "mfn-mali", target="android-mali", model="mobilefacenet")
    finally:
        if env is not None:
            os.environ["TVM_NDK_CC"] = env


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    """A tiny network as ONNX (input 1x3x16x16): :func:`tests.nets.tiny_net`."""
    from tests.nets import export_tiny

    return export_tiny(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="session")
def emulated_root():
    """The emulated AArch64 root, prepared once per machine through the same code as
    ``hwface device emulate`` (about a minute the first time, cached afterwards)."""
    from hwface.rpc.emulate import EmulationError, prepare_root

    try:
        return prepare_root(log=lambda line: print(line, file=sys.stderr, flush=True))
    except EmulationError as exc:
        if "apt-get install" in str(exc) or "needs root" in str(exc):
            pytest.skip(str(exc))
        raise
