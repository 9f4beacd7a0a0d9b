"""One `since` rule for every connector (docs/connectors.md): a date is its midnight in the event's
time zone, a date-time without an offset is in it too, one with an offset is that instant. It is
applied when the config loads: a connector is given the instant."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from aggregator.config import ConfigError, load_config
from connectors import build_connector
from connectors.http import HttpClient
from connectors.settings import parse_x, since_option
from tests.helpers import client, in_zone

TOKYO = ZoneInfo("Asia/Tokyo")  # nine hours ahead: a zone mix-up moves the start by nine hours
MIDNIGHT_IN_TOKYO = datetime(2016, 11, 27, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2016-11-28", MIDNIGHT_IN_TOKYO),
        (date(2016, 11, 28), MIDNIGHT_IN_TOKYO),
        ("2016-11-28T09:00", datetime(2016, 11, 28, 0, tzinfo=UTC)),
        (datetime(2016, 11, 28, 9), datetime(2016, 11, 28, 0, tzinfo=UTC)),
        ("2016-11-28T09:00Z", datetime(2016, 11, 28, 9, tzinfo=UTC)),
        ("2016-11-28T09:00:00+01:00", datetime(2016, 11, 28, 8, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_since_is_read_in_the_event_time_zone(value, expected):
    assert since_option(value, TOKYO) == expected


@pytest.mark.parametrize("value", ["last week", "2016-13-01", 20161128, "28/11/2016"])
def test_a_since_that_is_not_a_date_names_the_option(value):
    with pytest.raises(ValueError, match="is not a date like 2016-11-28"):
        since_option(value, TOKYO)
    settings, problems = parse_x({"start_time": value}, TOKYO)
    assert settings is None
    assert problems == [
        f"start_time: {value!r} is not a date like 2016-11-28 or a date-time like 2016-11-28T09:00"
    ]


LIVE = """
[[sources]]
name = "m"
type = "mastodon"
instance = "https://a.example"
since = {since}
[[sources]]
name = "b"
type = "bluesky"
since = {since}
[[sources]]
name = "xs"
type = "x"
start_time = {since}
"""


@pytest.mark.parametrize("since", ['"2016-11-28"', "2016-11-28"])  # a string, or a TOML date
def test_every_connector_starts_at_midnight_in_the_event_zone(project, since):
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text() + LIVE.format(since=since))
    config = in_zone(project, "Asia/Tokyo")
    env = {"AGGREGATOR_BLUESKY_HANDLE": "h", "AGGREGATOR_BLUESKY_APP_PASSWORD": "p",
           "AGGREGATOR_X_BEARER_TOKEN": "t"}  # fmt: skip
    with HttpClient(client()) as http:
        mastodon, bluesky, x = (
            build_connector(config.source(name), config.event, http=http, env=env)
            for name in ("m", "b", "xs")
        )
    assert mastodon.since == MIDNIGHT_IN_TOKYO
    assert bluesky.since == "2016-11-27T15:00:00.000Z"
    assert x.start_time == "2016-11-27T15:00:00Z"


def test_a_bad_since_stops_the_config_loading_naming_the_source(project):
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text() + LIVE.format(since='"next Tuesday"'))
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "sources[4].since",
        "sources[5].since",
        "sources[6].start_time",
    ]
