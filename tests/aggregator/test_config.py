from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.config import ConfigError, load_config, resolve_config_path
from tests.helpers import ROOT

EXPECTED_IDS = ["panel-opening", *[f"session-{i}" for i in range(1, 8)], "panel-closing"]

MINIMAL = """
[event]
name = "Test"
timezone = "Europe/London"
hashtags = ["Tag"]
[[sessions]]
id = "a"
title = "A"
start = "2016-11-28T12:00"
end = "2016-11-28T13:00"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_has_the_programme():
    config = load_config(ROOT / "config.toml")
    assert [s.id for s in config.sessions] == EXPECTED_IDS
    assert config.event.hashtags == ("CoPro16", "EveryoneIncluded")
    assert str(config.event.timezone) == "Europe/London"
    # November in London is UTC: 12:00 local is 12:00Z.
    assert config.sessions[0].start == datetime(2016, 11, 28, 12, tzinfo=UTC)
    assert config.sessions[-1].end == datetime(2016, 11, 28, 20, 30, tzinfo=UTC)
    for s in config.sessions:
        assert s.title and s.description and s.end > s.start


def test_shipped_sources_example_enabled_live_disabled():
    config = load_config(ROOT / "config.toml")
    enabled = {s.name: s.enabled for s in config.sources}
    assert enabled.pop("example") is True
    assert enabled and not any(enabled.values())
    assert {s.type for s in config.sources} >= {"jsonl", "mastodon", "bluesky", "x"}


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "posts.jsonl").write_text("")
    path = write(
        tmp_path, MINIMAL + '[[sources]]\nname = "f"\ntype = "jsonl"\npath = "posts.jsonl"\n'
    )
    config = load_config(path)
    assert config.sources[0].path == (tmp_path / "posts.jsonl").resolve()
    assert config.database_url == f"sqlite:///{(tmp_path / 'data' / 'aggregator.db').resolve()}"
    assert config.report_output == tmp_path / "site"


def test_database_url_is_kept_as_given(tmp_path):
    path = write(tmp_path, MINIMAL + '[storage]\ndatabase = "postgresql+psycopg://u@h/db"\n')
    assert load_config(path).database_url == "postgresql+psycopg://u@h/db"


def test_offset_times_are_kept(tmp_path):
    text = MINIMAL.replace('start = "2016-11-28T12:00"', 'start = "2016-11-28T12:00+02:00"')
    config = load_config(write(tmp_path, text))
    assert config.sessions[0].start == datetime(2016, 11, 28, 10, tzinfo=UTC)


def test_case_35_every_bad_field_is_named_at_once(tmp_path):
    bad = """
[event]
name = "Test"
timezone = "Mars/Olympus"
hashtags = ["Tag"]
[schedule]
cron = "every night"
[[sessions]]
id = "a"
title = "A"
start = "2016-11-28T12:00"
end = "2016-11-28T11:00"
[[sessions]]
id = "a"
title = "Again"
start = "2016-11-28T14:00"
end = "2016-11-28T15:00"
[[sources]]
name = "s"
type = "myspace"
[[sources]]
name = "f"
type = "jsonl"
path = "missing.jsonl"
[[sources]]
name = "rss"
type = "feed"
url = "file:///etc/passwd"
"""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, bad))
    problems = "\n".join(info.value.problems)
    for where in ("event.timezone", "schedule.cron", "sessions[0].end", "sessions[1].id",
                  "sources[0].type", "sources[1].path", "sources[2].url"):  # fmt: skip
        assert where in problems, where
    assert "myspace" in problems and "missing.jsonl" in problems


def test_case_35_overlapping_sessions_are_refused(tmp_path):
    text = (
        MINIMAL
        + '[[sessions]]\nid = "b"\ntitle = "B"\nstart = "2016-11-28T12:30"\nend = "2016-11-28T14:00"\n'
    )
    with pytest.raises(ConfigError, match="overlap"):
        load_config(write(tmp_path, text))


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="AGGREGATOR_CONFIG"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[event\n"))


def test_config_path_precedence():
    assert resolve_config_path("a.toml", {"AGGREGATOR_CONFIG": "b.toml"}) == Path("a.toml")
    assert resolve_config_path(None, {"AGGREGATOR_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, {}) == Path("config.toml")


def test_retry_options_of_live_sources_are_checked(tmp_path):
    text = MINIMAL + (
        '[[sources]]\nname = "m"\ntype = "mastodon"\ninstance = "https://example.org"\n'
        'max_attempts = 0\nbackoff_seconds = "soon"\nmax_wait_seconds = 5\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    problems = "\n".join(info.value.problems)
    assert "sources[0].max_attempts" in problems and "sources[0].backoff_seconds" in problems
    assert "max_wait_seconds" not in problems


def test_an_unsupported_database_is_a_config_error(tmp_path):
    path = write(tmp_path, MINIMAL + '[storage]\ndatabase = "mysql://u@h/db"\n')
    with pytest.raises(ConfigError, match=r"storage\.database: 'mysql' is not supported"):
        load_config(path)


def test_session_labels_default_to_programme_order_and_give_chart_keys(tmp_path):
    text = MINIMAL + (
        '[[sessions]]\nid = "b"\ntitle = "B"\nlabel = "Closing panel"\n'
        'start = "2016-11-28T14:00"\nend = "2016-11-28T15:00"\n'
    )
    first, second = load_config(write(tmp_path, text)).sessions
    assert (first.label, first.key) == ("Session 1", "1")
    assert (second.label, second.key) == ("Closing panel", "CP")
    shipped = load_config(ROOT / "config.toml").sessions
    assert [s.label for s in shipped][:2] == ["Opening panel", "Session 1"]
