"""The wheel: installed into a fresh virtual environment, hwface runs from any folder and never writes into its install."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(venv folder, installed hwface package) of the wheel built from this checkout.

    The venv sees this interpreter's dependencies (torch, TVM, ...) through a .pth
    file, so nothing is downloaded; hwface itself comes from the wheel only.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "dist")], check=True, cwd=REPO, timeout=600)
    wheel = next((tmp / "dist").glob("hwface-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = Path(subprocess.check_output([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=600)
    return venv, site / "hwface"


def _hwface(venv: Path, cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWFACE_")}
    env["HWFACE_HOME"] = str(home)
    return subprocess.run([str(venv / "bin" / "hwface"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_installed_hwface_runs_from_another_folder_on_its_package_data(installed, tmp_path):
    venv, package = installed
    assert (package / "shipped" / "targets" / "host.toml").exists()
    assert (package / "shipped" / "latency_db" / "host.sqlite").exists()
    before = _digest(package)
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()

    models = _hwface(venv, elsewhere, home, "models", "--format", "json")
    assert models.returncode == 0, models.stderr
    names = {m["name"] for m in json.loads(models.stdout)}
    assert {"mobilefacenet", "seesaw_share", "iresnet100"} <= names

    where = subprocess.run([venv / "bin" / "python", "-c", "import hwface; print(hwface.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(package), "the wheel's hwface, not the checkout's"

    built = _hwface(venv, elsewhere, home, "compile", "--model", "mobilefacenet", "--target", "host",
                    "-o", "mfn", "--format", "json")
    assert built.returncode == 0, built.stderr
    manifest = json.loads(built.stdout)
    assert (elsewhere / "mfn" / manifest["so"]).exists() and manifest["kernels"] > 0

    stats = _hwface(venv, elsewhere, home, "db", "stats", "--target", "host", "--format", "json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["measurements"] > 0  # the shipped rows, read in place

    assert _digest(package) == before, "nothing is written into the installed package"
