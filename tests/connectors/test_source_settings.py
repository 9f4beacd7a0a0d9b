"""Each source type's settings are read when the config loads (connectors.settings): a bad one is a
config error naming `sources[N].key` before anything runs, and a connector is made from a small
spec of its source (never the whole config), sharing the run's one HTTP client."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import grimp
import httpx
import pytest
import respx

import connectors
from aggregator import __version__, pipeline
from aggregator.config import ConfigError, load_config
from aggregator.settings import SOURCE_TYPES
from connectors.http import HttpClient, user_agent
from connectors.settings import (
    BlueskySettings,
    FeedSettings,
    FileSettings,
    MastodonSettings,
    Retry,
    XSettings,
    parse_bluesky,
    parse_feed,
    parse_file,
    parse_mastodon,
    parse_x,
)
from storage.db import open_database
from tests.helpers import TOKYO, FakeClock, client, invoke

NOT_A_DATE = "is not a date like 2016-11-28 or a date-time like 2016-11-28T09:00"
SECRET_PROBLEM = "name the environment variable that holds the secret"


def problems_of(result: tuple[object, list[str]]) -> list[str]:
    settings, problems = result
    assert (settings is None) == bool(problems)  # settings only when nothing is wrong
    return problems


# -- each type's parser -------------------------------------------------------------------------


def test_mastodon_settings_as_read():
    settings, problems = parse_mastodon(
        {
            "instance": ["https://a.example/", "https://b.example/sub/", "https://a.example"],
            "since": "2016-11-28",
            "token_env": {"https://a.example": "TOKEN_A"},
            "max_attempts": 2,
            "backoff_seconds": 0,
            "hashtags": ["NotMine"],  # every source's key: the loader's, not the type's
        },
        TOKYO,
    )
    assert problems == []
    assert settings == MastodonSettings(
        instances=("https://a.example", "https://b.example/sub"),
        since=datetime(2016, 11, 27, 15, tzinfo=UTC),  # midnight in Tokyo
        token_env={"https://a.example": "TOKEN_A"},
        retry=Retry(max_attempts=2, backoff_seconds=0),
    )
    one, _ = parse_mastodon({"instance": "https://mastodon.social", "token_env": "MY_TOKEN"})
    assert one is not None and one.instances == ("https://mastodon.social",)
    assert one.token_env == "MY_TOKEN" and one.since is None and one.retry == Retry()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({}, ['instance: is required: an http(s) URL or a list of them, e.g. instance = "https:']),
        ({"instance": []}, ["instance: is required"]),
        ({"instance": "mastodon.social"}, ["instance: 'mastodon.social' is not an http(s) URL"]),
        ({"instance": ["https://ok.example", 7]}, ["instance: 7 is not an http(s) URL"]),
        ({"instance": "https://a.example", "since": "last week"}, [f"since: 'last week' {NOT_A_DATE}"]),
        ({"instance": "https://a.example", "token_env": "abc-123.secret"}, [f"token_env: {SECRET_PROBLEM}"]),
        ({"instance": "https://a.example", "token_env": {"https://a.example": "x y"}},
         [f"token_env['https://a.example']: {SECRET_PROBLEM}"]),
        ({"instance": "https://a.example", "max_attempts": 0},
         ["max_attempts: must be a whole number of at least 1 (got 0)"]),
        ({"instance": "https://a.example", "max_wait_seconds": "soon"},
         ["max_wait_seconds: must be a number of seconds, 0 or more (got 'soon')"]),
        ({"instance": "ftp://a.example", "backoff_seconds": True, "since": 5},
         ["instance: 'ftp://a.example'", f"since: 5 {NOT_A_DATE}", "backoff_seconds: must be"]),
    ],
)  # fmt: skip
def test_mastodon_problems_are_named_by_key(table, expected):
    problems = problems_of(parse_mastodon(table))
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problem


def test_feed_settings_as_read():
    settings, problems = parse_feed(
        {"url": [" https://blog.example/feed ", "https://blog.example/feed"], "filter": "hashtags"}
    )
    assert problems == []
    assert settings == FeedSettings(urls=("https://blog.example/feed",), filter="hashtags")
    default, _ = parse_feed({"url": "https://www.youtube.com/feeds/videos.xml?channel_id=UC1"})
    assert default == FeedSettings(
        urls=("https://www.youtube.com/feeds/videos.xml?channel_id=UC1",)
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"url": "https://a.example/rss", "filter": "sometimes"},
         ["filter: must be \"all\" or \"hashtags\" (got 'sometimes')"]),
        ({"url": "file:///etc/passwd"},
         ["url: 'file:///etc/passwd' is not an http(s) URL (archives are read through path = ...)"]),
        ({"url": 42}, ['url: is required: an http(s) URL or a list of them, e.g. url = "https://']),
        ({"url": "https://a.example/rss", "backoff_seconds": -1},
         ["backoff_seconds: must be a number of seconds, 0 or more (got -1)"]),
    ],
)  # fmt: skip
def test_feed_problems_are_named_by_key(table, expected):
    problems = problems_of(parse_feed(table))
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problem


def test_bluesky_settings_as_read():
    assert parse_bluesky({}) == (BlueskySettings(), [])
    table = {"handle_env": "MY_HANDLE", "password_env": "MY_PASS", "service": "https://pds.example/",
             "since": "2026-11-21T09:00", "max_wait_seconds": 60}  # fmt: skip
    settings, problems = parse_bluesky(table, TOKYO)
    assert problems == []
    assert settings == BlueskySettings(
        handle_env="MY_HANDLE",
        password_env="MY_PASS",
        service="https://pds.example",
        since=datetime(2026, 11, 21, tzinfo=UTC),  # 09:00 in Tokyo
        retry=Retry(max_wait_seconds=60),
    )


def test_bluesky_problems_are_named_by_key():
    table = {"handle_env": "comms.example.org", "password_env": 1234, "service": "bsky.social",
             "since": "yesterday"}  # fmt: skip
    problems = problems_of(parse_bluesky(table))
    assert [p.split(":")[0] for p in problems] == ["handle_env", "password_env", "service", "since"]
    assert SECRET_PROBLEM in problems[0] and "AGGREGATOR_BLUESKY_HANDLE" in problems[0]
    assert problems[2] == "service: 'bsky.social' is not an http(s) URL"


def test_x_settings_as_read():
    assert parse_x({}) == (XSettings(), [])
    table = {"token_env": "MY_X", "endpoint": "all", "query": " #CoPro16 -is:retweet ",
             "start_time": "2016-11-28T09:00:00Z"}  # fmt: skip
    settings, problems = parse_x(table, TOKYO)
    assert problems == []
    assert settings == XSettings(
        token_env="MY_X",
        endpoint="all",
        query="#CoPro16 -is:retweet",
        start_time=datetime(2016, 11, 28, 9, tzinfo=UTC),  # an offset wins over the event's zone
    )
    blank, _ = parse_x({"query": "  "})
    assert blank is not None and blank.query is None  # the hashtags OR'ed


def test_x_problems_are_named_by_key():
    problems = problems_of(parse_x({"endpoint": "bogus", "query": 42, "start_time": "soon"}))
    assert problems == [
        'endpoint: must be "recent" or "all" (got \'bogus\')',
        "query: must be a string (got 42)",
        f"start_time: 'soon' {NOT_A_DATE}",
    ]


def test_archives_have_no_settings_of_their_own():
    assert parse_file({"path": "posts.jsonl", "max_attempts": 0}) == (FileSettings(), [])


def test_every_source_type_has_a_parser_and_a_connector():
    assert set(connectors.TYPES) == set(SOURCE_TYPES)
    built = connectors.registry()
    for name, kind in connectors.TYPES.items():
        module, _, attr = kind.connector.partition(":")
        assert built[name].__module__ == module and built[name].__name__ == attr


# -- the loader ---------------------------------------------------------------------------------

BAD_FEED = """
[[sources]]
name = "blogs"
type = "feed"
url = "https://blog.example/feed"
filter = "sometimes"
"""
BAD_SOURCES = (
    BAD_FEED
    + """
[[sources]]
name = "search"
type = "x"
endpoint = "bogus"
enabled = false
[[sources]]
name = "toots"
type = "mastodon"
instance = "mastodon.social"
since = "2016-13-01"
reach_back_days = 0
"""
)


def test_the_loader_names_each_bad_setting_by_its_source(project):
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text() + BAD_SOURCES)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.problems == [
        'sources[4].filter: must be "all" or "hashtags" (got \'sometimes\')',
        'sources[5].endpoint: must be "recent" or "all" (got \'bogus\')',  # disabled: checked too
        "sources[6].reach_back_days: must be a number of days, more than 0 (got 0)",
        "sources[6].instance: 'mastodon.social' is not an http(s) URL",
        f"sources[6].since: '2016-13-01' {NOT_A_DATE}",
    ]


def test_the_loader_gives_each_source_its_parsed_settings_and_hashtags(project):
    cfg = project / "config.toml"
    cfg.write_text(
        cfg.read_text().replace('timezone = "Europe/London"', 'timezone = "Asia/Tokyo"')
        + '[[sources]]\nname = "blogs"\ntype = "feed"\nurl = "https://blog.example/feed"\n'
        'hashtags = ["#CoPro16", "＃CoPro16", "Extra"]\nsince = "2016-11-28"\n'
    )
    config = load_config(cfg)
    blogs, mastodon = config.source("blogs"), config.source("mastodon")
    assert blogs is not None and mastodon is not None
    assert blogs.settings == FeedSettings(urls=("https://blog.example/feed",))
    assert blogs.hashtags == ("CoPro16", "Extra")  # no '#', each once; `since`: not a feed's
    assert isinstance(mastodon.settings, MastodonSettings) and mastodon.hashtags == ()
    spec = connectors.spec_for(mastodon, config.event)
    assert spec.hashtags == config.event.hashtags == ("CoPro16", "EveryoneIncluded")
    assert spec.settings is mastodon.settings and spec.path is None
    example = connectors.spec_for(config.sources[0], config.event)
    assert example.path == (project / "examples" / "transformathon-2016.jsonl").resolve()
    assert config.event.timezone == ZoneInfo("Asia/Tokyo")


def runs(project: Path) -> int:
    with sqlite3.connect(project / "data" / "aggregator.db") as conn:
        return conn.execute("SELECT count(*) FROM collectionrun").fetchone()[0]


def test_collect_with_a_bad_feed_filter_exits_2_in_one_line_and_runs_nothing(project):
    assert invoke(project, "collect").exit_code == 0
    assert runs(project) == 1
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text() + BAD_FEED)
    result = invoke(project, "collect")
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.endswith('sources[4].filter: must be "all" or "hashtags" (got \'sometimes\')')
    assert runs(project) == 1  # no run started, not even a failed one


# -- one HTTP client a run ----------------------------------------------------------------------

LIVE = """
[[sources]]
name = "toots"
type = "mastodon"
instance = "https://a.example"
max_attempts = 1
[[sources]]
name = "news"
type = "feed"
url = "https://feed.example/rss"
"""
RSS = b'<rss version="2.0"><channel><title>t</title></channel></rss>'


@respx.mock
def test_the_run_lends_one_client_to_every_live_source_and_closes_it(project, monkeypatch):
    made: list[HttpClient] = []

    class Recorded(HttpClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(pipeline, "HttpClient", Recorded)
    toots = respx.get(url__startswith="https://a.example/").mock(httpx.Response(503))
    news = respx.get("https://feed.example/rss").mock(httpx.Response(200, content=RSS))
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text() + LIVE)
    config = load_config(cfg)
    engine = open_database(config.database_url)
    try:
        summary = pipeline.collect(engine, config, sleep=FakeClock().sleep)
    finally:
        engine.dispose()
    status = {s.name: s.status for s in summary.sources}
    assert status == {"example": "ok", "toots": "failed", "news": "ok"}
    assert toots.call_count == 1  # its own max_attempts, on the run's client
    (client,) = made
    assert client.client.is_closed
    agents = {call.request.headers["user-agent"] for call in (*toots.calls, *news.calls)}
    assert agents == {user_agent(__version__)} and __version__ in user_agent(__version__)


@respx.mock
def test_a_sources_retries_share_the_clients_connections_and_rate_limit_windows():
    fake = FakeClock(1_800_000_000.0)
    used_up = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(fake.now) + 29)}
    respx.get("https://a.example/one").mock(httpx.Response(200, headers=used_up))
    respx.get("https://a.example/two").mock(httpx.Response(200))
    with HttpClient(client(), sleep=fake.sleep, clock=fake.clock, max_attempts=3,
                    user_agent="ua") as http:  # fmt: skip
        one, two = http.retrying(Retry(max_attempts=1)), http.retrying(Retry())
        assert (one.max_attempts, one.backoff, one.user_agent) == (1, http.backoff, "ua")
        assert two.max_attempts == 3 and one.client is two.client is http.client
        one.get("https://a.example/one")
        two.get("https://a.example/two")  # another source, the same host: its window holds
        assert fake.slept == [30.0] and (one.waits, two.waits) == (0, 1)
        one.close()
        assert not http.client.is_closed  # a source's view closes nothing


def test_a_run_of_archives_only_makes_no_client(config, engine, monkeypatch):
    monkeypatch.setattr(pipeline, "HttpClient", None)  # calling it would fail the run
    summary = pipeline.collect(engine, config)
    assert [(s.name, s.status) for s in summary.sources] == [("example", "ok")]


# -- the import direction -----------------------------------------------------------------------

CORE = {"aggregator.settings", "aggregator.errors", "aggregator.files", "aggregator.clock"}


def test_connectors_import_only_the_core_of_aggregator():
    graph = grimp.build_graph("connectors", "aggregator")
    for module in graph.find_children("connectors") | {"connectors"}:
        imported = {m for m in graph.find_modules_directly_imported_by(module)}
        outside = {m for m in imported if m.split(".")[0] == "aggregator"} - CORE
        assert outside == set(), f"{module} imports {outside}"
    assert not graph.chain_exists("connectors", "aggregator.config", as_packages=True)
