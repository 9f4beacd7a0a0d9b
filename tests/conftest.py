"""Shared fixtures: a copy of the shipped config and example in a temporary folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import connectors
from aggregator.config import Config, load_config
from connectors.base import ConnectorError, Page, Post
from storage.db import open_database

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "transformathon-2016.jsonl"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder holding config.toml and examples/ as shipped; data and site land inside it."""
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project / "config.toml")


@pytest.fixture
def engine(config: Config):
    engine = open_database(config.database_url)
    yield engine
    engine.dispose()


class Flaky:
    """A `feed` stand-in that fails while `Flaky.broken`, and otherwise yields one new post."""

    broken = True
    served = 0

    def __init__(self, source, config, **_):
        self.name = source.name

    def fetch(self, cursor) -> Iterator[Page]:
        if Flaky.broken:
            raise ConnectorError("https://feed.example/rss answered HTTP 503 after 5 attempts")
        Flaky.served += 1
        when = datetime(2016, 11, 28, 13, tzinfo=UTC)
        yield Page([Post("feed", f"f{Flaky.served}", when, "a", "hello")], {"n": Flaky.served})


@pytest.fixture
def flaky(project: Path, monkeypatch) -> Path:
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
