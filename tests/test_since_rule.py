"""One `since` rule for every connector (docs/connectors.md): a date is its midnight in the event's
time zone, a date-time without an offset is in it too, one with an offset is that instant."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest

from aggregator.config import SourceConfig
from connectors.base import ConnectorError, since_option
from connectors.bluesky import BlueskyConnector
from connectors.mastodon import MastodonConnector
from connectors.x import XConnector
from tests.helpers import in_zone

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
    assert since_option(value, TOKYO, "src") == expected


@pytest.mark.parametrize("value", ["last week", "2016-13-01", 20161128, "28/11/2016"])
def test_a_since_that_is_not_a_date_names_the_source_and_option(value):
    with pytest.raises(ConnectorError, match=r"source 'src': start_time .* is not a date"):
        since_option(value, TOKYO, "src", "start_time")


def source(stype: str, **options) -> SourceConfig:
    extra = {"instance": "https://a.example"} if stype == "mastodon" else {}
    return SourceConfig(stype, stype, True, MappingProxyType({**extra, **options}))


def test_every_connector_starts_at_midnight_in_the_event_zone(project):
    config = in_zone(project, "Asia/Tokyo")
    env = {"AGGREGATOR_BLUESKY_HANDLE": "h", "AGGREGATOR_BLUESKY_APP_PASSWORD": "p",
           "AGGREGATOR_X_BEARER_TOKEN": "t"}  # fmt: skip
    mastodon = MastodonConnector(source("mastodon", since="2016-11-28"), config)
    assert mastodon.since == MIDNIGHT_IN_TOKYO
    bluesky = BlueskyConnector(source("bluesky", since="2016-11-28"), config, env=env)
    assert bluesky.since == "2016-11-27T15:00:00.000Z"
    x = XConnector(source("x", start_time="2016-11-28"), config, env=env)
    assert x.start_time == "2016-11-27T15:00:00Z"
