"""Packs the shipped data into the wheel: ``targets/``, ``tuning_logs/``, ``latency_db/`` -> ``hwface/shipped/``.

The repository keeps them at its top level (the maintainers' commands write them
there); an installed hwface reads them as package data (:mod:`hwface.data_dirs`).
Everything else is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("targets", "tuning_logs", "latency_db")
NEVER_SHIPPED = shutil.ignore_patterns("*.lock", "*-wal", "*-shm", "*.seed", "emulated-*", "__pycache__")


class BuildWithShippedData(build_py):
    """build_py, then a copy of the shipped folders beside the package (not for an editable install)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable hwface reads the checkout's folders
        for name in SHIPPED:
            shutil.copytree(name, Path(self.build_lib) / "hwface" / "shipped" / name, ignore=NEVER_SHIPPED,
                            dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithShippedData})
