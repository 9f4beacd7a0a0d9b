"""Shared fixtures: a copy of the shipped config and example in a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aggregator.config import Config, load_config
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
