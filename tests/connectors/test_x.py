"""X API v2 connector against respx: the since_id/next_token rule, gaps, problem JSON, rate limits."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ConnectorError, Page, SourceSpec
from connectors.http import HttpClient
from connectors.settings import parse_x
from connectors.x import SNOWFLAKE_EPOCH_MS, XConnector, id_time
from tests.helpers import FakeClock, client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "x"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAtest%2Fbearer%3Dtoken"
ENV = {"AGGREGATOR_X_BEARER_TOKEN": TOKEN}
NOW = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


PAGE1, PAGE2, NEWER, EMPTY = (
    load(f"search_{n}.json") for n in ("page1", "page2", "newer", "empty")
)


def make_id(moment: datetime, seq: int = 0) -> str:
    ms = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return str(((ms - SNOWFLAKE_EPOCH_MS) << 22) + seq)


def connector(
    fake: FakeClock | None = None, env: dict[str, str] = ENV, **options: Any
) -> XConnector:
    fake = fake or FakeClock(NOW)
    settings, problems = parse_x(options)  # no event: dates are read in UTC
    assert settings is not None, problems
    source = SourceSpec("x", settings, ("CoPro16", "EveryoneIncluded"))
    http = HttpClient(client(), sleep=fake.sleep, clock=fake.clock, max_attempts=3)
    return XConnector(source, http=http, env=env, clock=fake.clock)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(
        base_url="https://api.x.com/2/tweets/search", assert_all_called=False
    ) as router:
        yield router


def answer_by_token(pages: dict[str | None, Any]) -> Any:
    """A side effect answering by `next_token` (None = a sweep's first request)."""

    def respond(request: httpx.Request) -> httpx.Response:
        found = pages[request.url.params.get("next_token")]
        return found if isinstance(found, httpx.Response) else httpx.Response(200, json=found)

    return respond


def run(x: XConnector, cursor: Any = None, stop_after: int | None = None) -> tuple[list[Page], Any]:
    pages: list[Page] = []
    for page in x.fetch(cursor):
        pages.append(page)
        cursor = page.cursor
        if len(pages) == stop_after:
            break
    return pages, cursor


def ids(pages: list[Page]) -> list[str]:
    return [p.id for page in pages for p in page.posts]


def sent(route: respx.Route) -> list[dict[str, str]]:
    return [dict(call.request.url.params) for call in route.calls]


TOKEN1 = PAGE1["meta"]["next_token"]


# -- credentials and request shape --------------------------------------------------------------


def test_case_37_a_missing_token_names_the_env_var() -> None:
    with pytest.raises(ConnectorError, match="AGGREGATOR_X_BEARER_TOKEN"):
        connector(env={})
    with pytest.raises(ConnectorError, match="MY_X_TOKEN"):
        connector(env=ENV, token_env="MY_X_TOKEN")


def test_default_query_and_request_shape(api: respx.MockRouter) -> None:
    route = api.get("/recent").respond(200, json=PAGE2)
    run(connector())
    (params,) = sent(route)
    assert params["query"] == "#CoPro16 OR #EveryoneIncluded"
    assert params["max_results"] == "100"
    assert "author_id" in params["expansions"] and "referenced_tweets.id" in params["expansions"]
    assert route.calls[0].request.headers["authorization"] == f"Bearer {TOKEN}"


def test_full_archive_endpoint_and_custom_query(api: respx.MockRouter) -> None:
    route = api.get("/all").respond(200, json=PAGE2)
    run(connector(endpoint="all", query="#CoPro16 -is:retweet", start_time="2016-11-28"))
    (params,) = sent(route)
    assert params["query"] == "#CoPro16 -is:retweet"
    assert (params["max_results"], params["start_time"]) == ("500", "2016-11-28T00:00:00Z")


# -- paging rule (reliability cases 6 and 7) ----------------------------------------------------


def test_case_07_since_id_moves_only_after_the_last_page(api: respx.MockRouter) -> None:
    route = api.get("/recent").mock(side_effect=answer_by_token({None: PAGE1, TOKEN1: PAGE2}))
    start = {"since_id": make_id(NOW - timedelta(hours=3))}
    pages, cursor = run(connector(), start)
    assert pages[0].cursor["since_id"] == start["since_id"]  # unchanged mid-run
    assert pages[0].cursor["next_token"] == TOKEN1
    assert cursor == {"since_id": PAGE1["meta"]["newest_id"]}  # the FIRST page's newest
    first, second = sent(route)
    assert first["since_id"] == second["since_id"] == start["since_id"]
    assert "next_token" not in first and second["next_token"] == TOKEN1


def test_case_07_a_killed_run_resumes_from_next_token_without_gap(api: respx.MockRouter) -> None:
    route = api.get("/recent").mock(side_effect=answer_by_token({None: PAGE1, TOKEN1: PAGE2}))
    start = {"since_id": make_id(NOW - timedelta(hours=3))}
    whole, _ = run(connector(), start)
    first, saved = run(connector(), start, stop_after=1)
    assert saved["since_id"] == start["since_id"]  # a kill here leaves since_id where it was
    rest, final = run(connector(), json.loads(json.dumps(saved)))
    assert ids(first) + ids(rest) == ids(whole)
    assert final == {"since_id": PAGE1["meta"]["newest_id"]}
    assert sent(route)[-1] == {**sent(route)[1]}  # the resumed request is the uninterrupted one


def test_the_next_run_starts_after_the_newest_post(api: respx.MockRouter) -> None:
    route = api.get("/recent").mock(side_effect=[httpx.Response(200, json=NEWER),
                                                 httpx.Response(200, json=EMPTY)])  # fmt: skip
    _, cursor = run(connector(), {"since_id": PAGE1["meta"]["newest_id"]})
    assert cursor == {"since_id": NEWER["meta"]["newest_id"]}
    _, cursor = run(connector(), cursor)  # nothing new: since_id stays
    assert cursor == {"since_id": NEWER["meta"]["newest_id"]}
    assert sent(route)[1]["since_id"] == NEWER["meta"]["newest_id"]


def test_a_changed_query_drops_the_old_next_token_but_keeps_since(api: respx.MockRouter) -> None:
    route = api.get("/recent").respond(200, json=PAGE2)
    since = make_id(NOW - timedelta(hours=3))
    run(connector(), {"since_id": since, "next_token": "old-token", "query": "#Other"})
    (params,) = sent(route)
    assert "next_token" not in params and params["since_id"] == since


# -- parsing and partial errors -----------------------------------------------------------------


def test_authors_from_includes_and_retweets_resolved(api: respx.MockRouter) -> None:
    api.get("/recent").mock(side_effect=answer_by_token({None: PAGE1, TOKEN1: PAGE2}))
    pages, _ = run(connector())
    posts = {p.id: p for page in pages for p in page.posts}
    retweet, original = PAGE1["data"][1], PAGE1["includes"]["tweets"][0]
    assert retweet["id"] not in posts
    kept = posts[original["id"]]
    assert (kept.author, kept.author_name, kept.platform) == ("carer_mel", "Mel S", "x")
    assert kept.url == f"https://x.com/carer_mel/status/{original['id']}"
    assert kept.media == [{"url": "https://pbs.twimg.com/media/GdDawn.jpg", "type": "photo",
                           "alt": "Dawn speaking to camera"}]  # fmt: skip
    assert (kept.likes, kept.reposts) == (12, 5)
    reply = posts[PAGE1["data"][0]["id"]]
    assert reply.reply_to == original["id"] and reply.mentions == ["carer_mel"]
    assert reply.links == ["https://grapevinecovandwarks.org/"]


def test_a_200_with_data_and_errors_keeps_the_data_and_warns(api: respx.MockRouter) -> None:
    api.get("/recent").respond(200, json=PAGE2)
    (page,), _ = run(connector())
    assert len(page.posts) == 2
    assert page.posts[0].quote_of == PAGE2["errors"][0]["resource_id"]
    assert len(page.warnings) == 1 and "Could not find tweet" in page.warnings[0]


def test_one_malformed_post_is_rejected_and_the_rest_kept(api: respx.MockRouter) -> None:
    body = json.loads(json.dumps(PAGE2))
    body["data"][0]["created_at"] = "yesterday"
    api.get("/recent").respond(200, json=body)
    (page,), _ = run(connector())
    assert ids([page]) == [PAGE2["data"][1]["id"]]
    assert len(page.rejected) == 1 and PAGE2["data"][0]["id"] in page.rejected[0]


@pytest.mark.parametrize(
    ("status", "name", "words"),
    [
        (401, "problem_401.json", "Unauthorized"),
        (403, "problem_403_client_forbidden.json", "Client Forbidden: When authenticating"),
        (400, "problem_400_invalid_query.json", "Ambiguous use of or"),
    ],
)
def test_case_05_problem_json_is_surfaced_in_plain_words(
    api: respx.MockRouter, status: int, name: str, words: str
) -> None:
    api.get("/recent").respond(status, json=load(name))
    with pytest.raises(ConnectorError) as caught:
        run(connector())
    assert words in str(caught.value)
    assert (status == 400) or "AGGREGATOR_X_BEARER_TOKEN" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert api.calls.call_count == 1  # never retried


def test_case_01_429_waits_until_x_rate_limit_reset(api: respx.MockRouter) -> None:
    fake = FakeClock(NOW)
    limited = httpx.Response(429, json=load("problem_429.json"),
                             headers={"x-rate-limit-reset": str(int(fake.now) + 60)})  # fmt: skip
    api.get("/recent").mock(side_effect=[limited, httpx.Response(200, json=PAGE2)])
    (page,), _ = run(connector(fake))
    assert page.waits == 1 and len(page.posts) == 2
    assert 60 <= fake.slept[0] <= 62


# -- gaps (reliability case 13) -----------------------------------------------------------------


def test_case_13_a_since_point_older_than_7_days_is_a_recorded_gap(api: respx.MockRouter) -> None:
    route = api.get("/recent").respond(200, json=PAGE2)
    old = NOW - timedelta(days=10)
    (page,), cursor = run(connector(), {"since_id": make_id(old)})
    (warning,) = page.warnings[:1]
    assert warning.startswith("X recent search reaches back 7 days; posts between ")
    assert old.strftime("%Y-%m-%dT%H:%M") in warning
    assert "may be missing" in warning
    (params,) = sent(route)
    assert "since_id" not in params  # the API would refuse it; start at the horizon instead
    assert params["start_time"] == (NOW - timedelta(days=7, minutes=-1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert cursor == {"since_id": PAGE2["meta"]["newest_id"]}


def test_no_gap_warning_within_7_days_or_on_full_archive(api: respx.MockRouter) -> None:
    api.get("/recent").respond(200, json=PAGE2)
    api.get("/all").respond(200, json=PAGE2)
    recent = {"since_id": make_id(NOW - timedelta(days=6))}
    archive = {"since_id": make_id(NOW - timedelta(days=400))}
    assert not [w for w in run(connector(), recent)[0][0].warnings if "7 days" in w]
    (page,), _ = run(connector(endpoint="all"), archive)
    assert not [w for w in page.warnings if "7 days" in w]
    assert dict(api.calls[-1].request.url.params)["since_id"] == archive["since_id"]


def test_case_13_an_old_start_time_on_recent_search_is_a_gap_too(api: respx.MockRouter) -> None:
    api.get("/recent").respond(200, json=PAGE2)
    (page,), _ = run(connector(start_time="2016-11-28T12:00:00Z"))
    assert any("2016-11-28T12:00:00Z" in w and "7 days" in w for w in page.warnings)


# -- secrets (reliability case 36) --------------------------------------------------------------


def test_case_36_the_token_stays_out_of_logs_errors_and_cursors(
    api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.get("/recent").mock(side_effect=answer_by_token({
        None: PAGE1, TOKEN1: httpx.Response(503, json={"title": "Service Unavailable"}),
    }))  # fmt: skip
    pages: list[Page] = []
    with pytest.raises(ConnectorError) as caught:
        for page in connector().fetch(None):
            pages.append(page)
    assert "503" in str(caught.value)
    assert len(pages) == 1 and pages[0].cursor["next_token"] == TOKEN1  # kept; resumable
    for text in (
        caplog.text,
        str(caught.value),
        repr(vars(caught.value)),
        json.dumps(pages[0].cursor),
    ):
        assert TOKEN not in text


@given(st.datetimes(min_value=datetime(2011, 1, 1), max_value=datetime(2060, 1, 1),
                    timezones=st.just(UTC)), st.integers(0, 2**22 - 1))  # fmt: skip
def test_id_time_reads_the_snowflake(moment: datetime, seq: int) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert id_time(make_id(moment, seq)) == moment


def test_the_client_passed_in_stays_open_and_keeps_its_own_retries(api: respx.MockRouter) -> None:
    api.get("/recent").mock(side_effect=answer_by_token({None: EMPTY}))
    lent = connector()
    run(lent)
    assert not lent.http.client.is_closed  # the client belongs to the caller (the pipeline)
    assert lent.http.max_attempts == 3  # the source sets no retries: the client's hold
    assert connector(max_attempts=1).http.max_attempts == 1
