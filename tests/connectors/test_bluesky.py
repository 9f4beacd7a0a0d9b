"""Bluesky connector against respx: login/refresh, cursor paging, the cap restart, resume, parsing."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ConnectorError, Page, SourceSpec
from connectors.bluesky import BlueskyConnector, byte_slice, post_from_view
from connectors.http import HttpClient
from connectors.settings import BlueskySettings, parse_bluesky
from tests.helpers import FakeClock, client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bluesky"
VIEWS: dict[str, dict[str, Any]] = json.loads((FIXTURES / "postviews.json").read_text())
SESSION = json.loads((FIXTURES / "createSession.json").read_text())
REFRESHED = json.loads((FIXTURES / "refreshSession.json").read_text())
ENV = {"AGGREGATOR_BLUESKY_HANDLE": "comms.example.org",
       "AGGREGATOR_BLUESKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop"}  # fmt: skip
SECRETS = [ENV["AGGREGATOR_BLUESKY_APP_PASSWORD"], SESSION["accessJwt"], SESSION["refreshJwt"],
           REFRESHED["accessJwt"], REFRESHED["refreshJwt"]]  # fmt: skip
XRPC = "https://bsky.social/xrpc"
NOW = 1_795_000_000.0  # where the fake clock starts, in seconds since the epoch


# -- a small Lexicon validator: enough of the schema language to hold the fixtures to it --------

LEXICONS = {
    doc["id"]: doc
    for doc in (json.loads(p.read_text()) for p in (FIXTURES / "lexicons").glob("*.json"))
}


def resolve(ref: str, current: str) -> tuple[str, dict[str, Any]] | None:
    nsid, _, name = ref.partition("#")
    nsid = nsid or current
    doc = LEXICONS.get(nsid)
    return (nsid, doc["defs"][name or "main"]) if doc else None  # other lexicons: not checked


def check(value: Any, schema: dict[str, Any], nsid: str, where: str = "$") -> None:
    kind = schema["type"]
    if kind == "record":
        return check(value, schema["record"], nsid, where)
    if kind in ("ref", "union"):
        refs = [schema["ref"]] if kind == "ref" else schema["refs"]
        if kind == "union":
            assert isinstance(value, dict) and "$type" in value, f"{where}: union needs $type"
            wanted = value["$type"].removesuffix("#main")
            refs = [r for r in refs if (r if "#" in r and not r.startswith("#") else nsid + r) == wanted
                    or r == wanted]  # fmt: skip
            assert refs, f"{where}: $type {value['$type']} not allowed"
        found = resolve(refs[0], nsid)
        if found:
            check(value, found[1], found[0], where)
        return
    if kind == "object":
        assert isinstance(value, dict), f"{where}: not an object"
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key}"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                check(value[key], sub, nsid, f"{where}.{key}")
        return
    if kind == "array":
        assert isinstance(value, list), f"{where}: not an array"
        assert len(value) <= schema.get("maxLength", len(value)), f"{where}: too long"
        for i, item in enumerate(value):
            check(item, schema["items"], nsid, f"{where}[{i}]")
        return
    if kind == "string":
        assert isinstance(value, str), f"{where}: not a string"
        assert len(value.encode()) <= schema.get("maxLength", 10**9), f"{where}: too long"
        fmt = schema.get("format")
        if fmt == "datetime":
            assert value.endswith("Z") and "T" in value, f"{where}: not an RFC 3339 datetime"
        prefix = {"at-uri": "at://", "did": "did:", "uri": "http"}.get(fmt or "")
        assert not prefix or value.startswith(prefix), f"{where}: not a {fmt}"
        return
    if kind == "integer":
        assert isinstance(value, int) and value >= schema.get("minimum", 0), f"{where}: bad integer"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{where}: not a boolean"
    elif kind == "blob":
        assert value.get("$type") == "blob" and value.get("mimeType"), f"{where}: not a blob"


def lexicon(ref: str) -> tuple[str, dict[str, Any]]:
    found = resolve(ref, "")
    assert found
    return found


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_fixture_postviews_follow_the_lexicons(name: str) -> None:
    view = VIEWS[name]
    check(view, lexicon("app.bsky.feed.defs#postView")[1], "app.bsky.feed.defs")
    check(view["record"], lexicon("app.bsky.feed.post")[1], "app.bsky.feed.post")
    for facet in view["record"].get("facets", []):
        index = facet["index"]
        shown = byte_slice(view["record"]["text"], index["byteStart"], index["byteEnd"])
        for feature in facet["features"]:
            if feature["$type"].endswith("#tag"):
                assert shown and shown.lower() == "#" + feature["tag"].lower()


def test_fixture_sessions_and_pages_follow_the_lexicons() -> None:
    for body in (SESSION, REFRESHED):
        check(body, lexicon("com.atproto.server.createSession")[1]["output"]["schema"], "x")
    output = lexicon("app.bsky.feed.searchPosts")[1]["output"]["schema"]
    check(search_body(list(VIEWS), "c1"), output, "app.bsky.feed.searchPosts")


# -- helpers ------------------------------------------------------------------------------------


def search_body(names: list[str], cursor: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"posts": [VIEWS[n] for n in names]}
    if cursor:
        body["cursor"] = cursor
    return body


Answer = dict[str, Any] | httpx.Response


class FakeSearch:
    """searchPosts by (q, cursor, until) -> one answer; records every request's params."""

    def __init__(self, pages: dict[tuple[str, str | None, str | None], Answer]) -> None:
        self.pages = pages
        self.calls: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.calls.append(params)
        answer = self.pages[(params["q"], params.get("cursor"), params.get("until"))]
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=XRPC, assert_all_called=False) as router:
        router.post("/com.atproto.server.createSession").respond(200, json=SESSION)
        router.post("/com.atproto.server.refreshSession").respond(200, json=REFRESHED)
        yield router


def connector(
    fake: FakeClock, tags: tuple[str, ...] = ("CoPro16",), **options: Any
) -> BlueskyConnector:
    settings, problems = parse_bluesky(options)  # no event: dates are read in UTC
    assert settings is not None, problems
    http = HttpClient(client(), sleep=fake.sleep, clock=fake.clock, max_attempts=3)
    return BlueskyConnector(SourceSpec("bluesky", settings, tags), http=http, env=ENV)


def collect(pages: Iterator[Page], stop_after: int | None = None) -> tuple[list[Page], Any]:
    got: list[Page] = []
    for page in pages:
        got.append(page)
        if len(got) == stop_after:
            break
    return got, got[-1].cursor if got else None


def ids(pages: list[Page]) -> list[str]:
    return [p.id for page in pages for p in page.posts]


THREE_PAGES: dict[tuple[str, str | None, str | None], Answer] = {
    ("#CoPro16", None, None): search_body(["emoji_skin_tone", "with_mention_link_image"], "c1"),
    ("#CoPro16", "c1", None): search_body(["reply_with_record_tags"], "c2"),  # short, with a cursor
    ("#CoPro16", "c2", None): search_body(["quote_with_1970_clock"]),  # no cursor: the end
}


# -- parsing ------------------------------------------------------------------------------------


def test_post_fields_from_a_postview() -> None:
    post, note = post_from_view(VIEWS["with_mention_link_image"])
    assert note is None
    assert post.platform == "bluesky"
    assert post.id == "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3lbq2xkz7mc2a"
    assert post.url == "https://bsky.app/profile/nhsvoices.bsky.social/post/3lbq2xkz7mc2a"
    assert (post.author, post.author_name) == ("nhsvoices.bsky.social", "NHS Voices")
    assert post.hashtags == ["CoPro16"]
    assert post.mentions == ["carermel.bsky.social"]  # byte offsets, after a 4-byte emoji
    assert post.links == ["https://www.england.nhs.uk/participation/"]
    assert post.media[0]["alt"] == "Panel of four speakers on a stage"
    assert post.media[0]["url"].startswith("https://cdn.bsky.app/img/feed_fullsize/")
    assert (post.likes, post.reposts, post.replies, post.quotes) == (7, 3, 1, 1)
    assert post.lang == "en"
    assert post.created_at.isoformat() == "2026-11-28T12:05:11.123000+00:00"


def test_reply_record_tags_and_quote() -> None:
    reply, _ = post_from_view(VIEWS["reply_with_record_tags"])
    assert reply.reply_to == VIEWS["with_mention_link_image"]["uri"]
    assert reply.hashtags == ["copro16", "EveryoneIncluded"]  # facet tag + record.tags
    quote, _ = post_from_view(VIEWS["quote_with_1970_clock"])
    assert quote.quote_of == VIEWS["with_mention_link_image"]["uri"]
    assert quote.media and quote.media[0]["alt"] is None  # empty alt text is no alt text


def test_an_absurd_created_at_falls_back_to_indexed_at_and_says_so() -> None:
    post, note = post_from_view(VIEWS["quote_with_1970_clock"])
    assert post.created_at.isoformat() == "2026-11-28T12:09:30+00:00"
    assert note and "1970-01-01" in note and post.url in note
    assert post.raw["record"]["createdAt"].startswith("1970")  # both times kept


@given(st.text(), st.text(alphabet=st.characters(categories=("L", "N")), min_size=1), st.text())
def test_facet_byte_offsets_pick_out_the_hashtag(before: str, tag: str, after: str) -> None:
    text = f"{before}#{tag}{after}"
    start = len(before.encode("utf-8"))
    end = start + len(f"#{tag}".encode())
    assert byte_slice(text, start, end) == f"#{tag}"


def test_a_slice_through_a_character_is_refused() -> None:
    assert byte_slice("💚#CoPro16", 1, 5) is None
    assert byte_slice("💚#CoPro16", 4, 12) == "#CoPro16"


# -- credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", list(ENV))
def test_case_37_a_missing_credential_names_the_env_var(missing: str) -> None:
    source = SourceSpec("bluesky", BlueskySettings(), ("CoPro16",))
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ConnectorError, match=missing), HttpClient(client()) as http:
        BlueskyConnector(source, http=http, env=env)


def test_custom_env_var_names_are_used() -> None:
    settings, _ = parse_bluesky({"handle_env": "MY_HANDLE", "password_env": "MY_PASS"})
    source = SourceSpec("bluesky", settings, ("CoPro16",))
    with pytest.raises(ConnectorError, match="MY_PASS"), HttpClient(client()) as http:
        BlueskyConnector(source, http=http, env={"MY_HANDLE": "me.example"})


def test_login_failure_is_plain_and_keeps_the_password_out(api: respx.MockRouter) -> None:
    api.post("/com.atproto.server.createSession").respond(
        401, json=json.loads((FIXTURES / "error_login.json").read_text())
    )
    with pytest.raises(ConnectorError) as caught:
        list(connector(FakeClock(NOW)).fetch(None))
    message = str(caught.value)
    assert "Invalid identifier or password" in message
    assert "AGGREGATOR_BLUESKY_APP_PASSWORD" in message
    assert ENV["AGGREGATOR_BLUESKY_APP_PASSWORD"] not in message


# -- paging (reliability case 9) ----------------------------------------------------------------


def test_case_09_short_page_with_cursor_goes_on_and_no_cursor_stops(api: respx.MockRouter) -> None:
    fake_search = FakeSearch(THREE_PAGES)
    api.get("/app.bsky.feed.searchPosts").mock(side_effect=fake_search)
    pages, cursor = collect(connector(FakeClock(NOW)).fetch(None))
    assert len(pages) == 3 and len(ids(pages)) == 4
    assert [c.get("cursor") for c in fake_search.calls] == [None, "c1", "c2"]
    assert all(c["sort"] == "latest" and c["limit"] == "100" for c in fake_search.calls)
    newest = VIEWS["emoji_skin_tone"]["record"]["createdAt"]
    assert cursor == {"tags": {"CoPro16": {"since": newest}}}
    assert any("1970" in w for w in pages[2].warnings)
    assert all(p.via == "bsky.social #CoPro16" for page in pages for p in page.posts)


def test_case_09_cursor_cap_restarts_below_the_oldest_post_seen(api: respx.MockRouter) -> None:
    oldest = VIEWS["with_mention_link_image"]["indexedAt"]
    fake_search = FakeSearch({
        ("#CoPro16", None, None): search_body(["emoji_skin_tone", "with_mention_link_image"], "c1"),
        ("#CoPro16", "c1", None): httpx.Response(500, json={"error": "InternalServerError"}),
        ("#CoPro16", None, oldest): search_body(["with_mention_link_image", "reply_with_record_tags"]),
    })  # fmt: skip
    api.get("/app.bsky.feed.searchPosts").mock(side_effect=fake_search)
    pages, _ = collect(connector(FakeClock(NOW)).fetch(None))
    assert ids(pages) == [VIEWS[n]["uri"] for n in
                          ("emoji_skin_tone", "with_mention_link_image", "reply_with_record_tags")]  # fmt: skip
    assert fake_search.calls[-1].get("until") == oldest and "cursor" not in fake_search.calls[-1]
    assert any("result cap" in w for w in pages[-1].warnings)


def test_case_09_403_on_a_cursor_is_a_clear_auth_error_and_earlier_pages_stand(
    api: respx.MockRouter,
) -> None:
    forbidden = json.loads((FIXTURES / "error_403.json").read_text())
    api.get("/app.bsky.feed.searchPosts").mock(side_effect=FakeSearch({
        ("#CoPro16", None, None): search_body(["emoji_skin_tone"], "c1"),
        ("#CoPro16", "c1", None): httpx.Response(403, json=forbidden),
    }))  # fmt: skip
    got: list[Page] = []
    with pytest.raises(ConnectorError, match=r"HTTP 403.*signed-in.*AGGREGATOR_BLUESKY_HANDLE"):
        for page in connector(FakeClock(NOW)).fetch(None):
            got.append(page)
    assert ids(got) == [VIEWS["emoji_skin_tone"]["uri"]]
    assert got[0].cursor["tags"]["CoPro16"]["cursor"] == "c1"


# -- sessions -----------------------------------------------------------------------------------


def test_one_login_for_the_whole_run_and_expired_tokens_are_refreshed(
    api: respx.MockRouter,
) -> None:
    expired = json.loads((FIXTURES / "error_expired_token.json").read_text())
    answers = {**THREE_PAGES, ("#EveryoneIncluded", None, None): search_body(["salisbury"])}

    def search(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == f"Bearer {SESSION['accessJwt']}" and "c2" in str(
            request.url
        ):
            return httpx.Response(400, json=expired)
        return FakeSearch(answers)(request)

    api.get("/app.bsky.feed.searchPosts").mock(side_effect=search)
    pages, _ = collect(connector(FakeClock(NOW), ("CoPro16", "EveryoneIncluded")).fetch(None))
    assert len(ids(pages)) == 5
    login = [c for c in api.calls if c.request.url.path.endswith("createSession")]
    refresh = [c for c in api.calls if c.request.url.path.endswith("refreshSession")]
    assert len(login) == 1 and len(refresh) == 1
    assert refresh[0].request.headers["authorization"] == f"Bearer {SESSION['refreshJwt']}"
    last = [c for c in api.calls if c.request.url.path.endswith("searchPosts")][-1]
    assert last.request.headers["authorization"] == f"Bearer {REFRESHED['accessJwt']}"


def test_a_refused_refresh_falls_back_to_a_new_login(api: respx.MockRouter) -> None:
    api.post("/com.atproto.server.refreshSession").respond(
        400, json={"error": "ExpiredToken", "message": "Token has expired"}
    )
    state = {"first": True}

    def search(request: httpx.Request) -> httpx.Response:
        if state.pop("first", False):
            return httpx.Response(400, json={"error": "ExpiredToken", "message": "expired"})
        return httpx.Response(200, json=search_body(["salisbury"]))

    api.get("/app.bsky.feed.searchPosts").mock(side_effect=search)
    pages, _ = collect(connector(FakeClock(NOW)).fetch(None))
    assert len(ids(pages)) == 1
    logins = [c for c in api.calls if c.request.url.path.endswith("createSession")]
    assert len(logins) == 2


# -- resume, sightings, rejects, rate limits, secrets -------------------------------------------


def test_case_06_killed_run_resumes_mid_sweep_no_gap_no_duplicate(api: respx.MockRouter) -> None:
    api.get("/app.bsky.feed.searchPosts").mock(side_effect=FakeSearch(THREE_PAGES))
    whole, _ = collect(connector(FakeClock(NOW)).fetch(None))
    first, saved = collect(connector(FakeClock(NOW)).fetch(None), stop_after=1)
    assert saved["tags"]["CoPro16"].get("since") is None  # not moved mid-sweep
    assert not any(k in json.dumps(saved) for k in ("Jwt", "password"))  # no tokens in cursors
    rest, _ = collect(connector(FakeClock(NOW)).fetch(json.loads(json.dumps(saved))))
    assert ids(first) + ids(rest) == ids(whole)


def test_the_next_run_asks_only_for_posts_since_the_newest_seen(api: respx.MockRouter) -> None:
    fake_search = FakeSearch(THREE_PAGES)
    api.get("/app.bsky.feed.searchPosts").mock(side_effect=fake_search)
    _, cursor = collect(connector(FakeClock(NOW)).fetch(None))
    collect(connector(FakeClock(NOW)).fetch(cursor))
    assert fake_search.calls[-1]["since"] == VIEWS["emoji_skin_tone"]["record"]["createdAt"]


def test_the_since_option_bounds_the_first_run(api: respx.MockRouter) -> None:
    fake_search = FakeSearch(THREE_PAGES)
    api.get("/app.bsky.feed.searchPosts").mock(side_effect=fake_search)
    collect(connector(FakeClock(NOW), since="2026-11-28").fetch(None))
    assert {c["since"] for c in fake_search.calls} == {"2026-11-28T00:00:00.000Z"}  # no event: UTC


def test_case_12_the_same_post_under_two_hashtags_is_two_sightings(api: respx.MockRouter) -> None:
    api.get("/app.bsky.feed.searchPosts").mock(side_effect=FakeSearch({
        ("#CoPro16", None, None): search_body(["quote_with_1970_clock"]),
        ("#EveryoneIncluded", None, None): search_body(["quote_with_1970_clock"]),
    }))  # fmt: skip
    pages, _ = collect(connector(FakeClock(NOW), ("CoPro16", "EveryoneIncluded")).fetch(None))
    posts = [p for page in pages for p in page.posts]
    assert len({p.id for p in posts}) == 1
    assert [p.via for p in posts] == ["bsky.social #CoPro16", "bsky.social #EveryoneIncluded"]


def test_one_malformed_post_is_rejected_and_the_rest_kept(api: respx.MockRouter) -> None:
    broken = {k: v for k, v in VIEWS["salisbury"].items() if k != "indexedAt"}
    body = {"posts": [VIEWS["emoji_skin_tone"], broken, VIEWS["salisbury"] | {"record": "x"}]}
    api.get("/app.bsky.feed.searchPosts").respond(200, json=body)
    (page,), _ = collect(connector(FakeClock(NOW)).fetch(None))
    assert ids([page]) == [VIEWS["emoji_skin_tone"]["uri"]]
    assert len(page.rejected) == 2 and VIEWS["salisbury"]["uri"] in page.rejected[0]


def test_case_01_429_waits_until_ratelimit_reset(api: respx.MockRouter) -> None:
    fake = FakeClock(NOW)
    limited = httpx.Response(429, headers={"RateLimit-Reset": str(int(fake.now) + 30)},
                             json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})  # fmt: skip
    api.get("/app.bsky.feed.searchPosts").mock(
        side_effect=[limited, httpx.Response(200, json=search_body(["salisbury"]))]
    )
    (page,), _ = collect(connector(fake).fetch(None))
    assert page.waits == 1 and len(page.posts) == 1
    assert 30 <= fake.slept[0] <= 32


def test_case_36_secrets_stay_out_of_logs_errors_and_cursors(
    api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.get("/app.bsky.feed.searchPosts").respond(502, text="Bad Gateway")
    with pytest.raises(ConnectorError) as caught:
        list(connector(FakeClock(NOW)).fetch(None))
    seen = caplog.text + str(caught.value) + repr(caught.value.__dict__)
    assert "502" in caplog.text + str(caught.value)
    for secret in SECRETS:
        assert secret not in seen


def test_a_cursor_cycle_cannot_run_forever(
    api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.bluesky.MAX_REQUESTS", 4)
    api.get("/app.bsky.feed.searchPosts").mock(side_effect=FakeSearch({
        ("#CoPro16", None, None): search_body(["salisbury"], "c1"),
        ("#CoPro16", "c1", None): search_body(["salisbury"], "c2"),
        ("#CoPro16", "c2", None): search_body(["salisbury"], "c1"),
    }))  # fmt: skip
    pages, cursor = collect(connector(FakeClock(NOW)).fetch(None))
    assert len(pages) == 5 and "stopped after 4 requests" in pages[-1].warnings[0]
    assert cursor["tags"]["CoPro16"]["cursor"] == "c2"  # the next run goes on from here
