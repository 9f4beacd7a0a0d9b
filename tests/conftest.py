"""Shared fixtures: a copy of the shipped config and example in a temporary folder, its database,
the example loaded into it, and a source that fails on demand. The helpers behind them, and the
ones test files import, are in tests/helpers.py.

The whole suite runs in a time zone with an offset from UTC (St John's, Newfoundland: -03:30 in
winter, -02:30 in summer), so that local time read where UTC is meant, or the other way round,
fails a test instead of passing by coincidence."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

os.environ["TZ"] = "America/St_Johns"  # before anything reads the local zone
time.tzset()

import connectors  # noqa: E402
from aggregator.config import Config, load_config  # noqa: E402
from storage.db import open_database  # noqa: E402
from tests.helpers import Flaky, copy_database, load, shipped_project  # noqa: E402


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder holding config.toml and examples/ as shipped; data and site land inside it."""
    return shipped_project(tmp_path)


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project / "config.toml")


@pytest.fixture
def engine(config: Config):
    engine = open_database(config.database_url)
    yield engine
    engine.dispose()


class LoadedDatabases:
    """The example, with or without the export tests' people, imported and tagged once a run
    under the shipped config (through the CLI), for each test to copy."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[bool, Path] = {}

    def copy_into(self, project: Path, people: bool) -> Path:
        if people not in self.made:
            self.made[people] = load(shipped_project(self.folder / f"people-{people}"), people)
        return copy_database(self.made[people], project)


@pytest.fixture(scope="session")
def loaded_databases(tmp_path_factory: pytest.TempPathFactory) -> LoadedDatabases:
    return LoadedDatabases(tmp_path_factory.mktemp("loaded"))


@pytest.fixture
def loaded(project: Path, loaded_databases: LoadedDatabases) -> Path:
    """The project with the bundled example and `helpers.PEOPLE` imported and tagged."""
    return loaded_databases.copy_into(project, people=True)


@pytest.fixture
def example_loaded(project: Path, loaded_databases: LoadedDatabases) -> Path:
    """The project with the bundled example imported and tagged."""
    return loaded_databases.copy_into(project, people=False)


@pytest.fixture
def flaky(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project with a `feed` source named "news" that fails until told otherwise."""
    original = connectors.registry
    monkeypatch.setattr(connectors, "registry", lambda: {**original(), "feed": Flaky})
    monkeypatch.setattr(Flaky, "broken", True)
    cfg = project / "config.toml"
    cfg.write_text(
        cfg.read_text() + '\n[[sources]]\nname = "news"\ntype = "feed"\n'
        'url = "https://feed.example/rss"\n'
    )
    return project
