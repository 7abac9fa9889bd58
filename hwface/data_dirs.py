"""Where hwface reads its shipped data and writes a user's.

Three folders of data come with hwface: ``targets``, ``tuning_logs`` and
``latency_db``. Installed from a wheel they are package data
(``hwface/shipped/<name>``); in a source checkout they are the repository's
top-level folders. Either way hwface only reads them.

What a user's runs add (tuning records, measured rows, trained predictors) goes to
the user's data folder: ``$HWFACE_HOME``, else the platform's user data folder
(``~/.local/share/hwface`` on Linux). The first write to a tuning database or a
latency database starts the user's copy from the shipped one, so the shipped
records and rows stay first-class and the user's are added to them.

An environment variable naming one folder replaces both for its data, reads and
writes alike: ``$HWFACE_TARGETS``, ``$HWFACE_TUNING_LOGS``, ``$HWFACE_LATENCY_DB``.
That is how a maintainer's command writes the shipped set itself
(``benchmarks/measure_latency_data.py`` points them at the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

SHIPPED = ("targets", "tuning_logs", "latency_db")
HOME_ENV = "HWFACE_HOME"
OVERRIDE_ENV = {"targets": "HWFACE_TARGETS", "tuning_logs": "HWFACE_TUNING_LOGS", "latency_db": "HWFACE_LATENCY_DB"}

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """The shipped folder ``name`` (one of :data:`SHIPPED`): package data when installed, else the checkout's."""
    installed = _PACKAGE / "shipped" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def user_home() -> Path:
    """The user's data folder: ``$HWFACE_HOME``, else the platform's user data folder for hwface."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("hwface", appauthor=False))


def override(name: str) -> Path | None:
    """The one folder an environment variable names for ``name`` (reads and writes), or None."""
    env = os.environ.get(OVERRIDE_ENV[name])
    return Path(env) if env else None


def write_dir(name: str) -> Path:
    """Where runs write ``name``: the override, else the user's folder."""
    return override(name) or user_home() / name


def read_dirs(name: str) -> tuple[Path, ...]:
    """Where ``name`` is read from, first match first: the override alone, else the user's folder then the shipped one."""
    one = override(name)
    return (one,) if one else (user_home() / name, shipped_dir(name))
