"""connectors/mastodon.py against a simulated tag timeline (respx), built from real Status shapes."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from aggregator.pipeline import explain, tag
from connectors.base import ConnectorError, Page
from connectors.http import HttpClient
from connectors.mastodon import MastodonConnector, id_key, instance_key, post_from_status
from connectors.settings import parse_mastodon
from storage.queries import save_page
from tests.helpers import (
    T0,
    A,
    FakeInstance,
    client,
    in_zone,
    make_status,
    many,
    mastodon_fixture,
    mastodon_source,
)

B = "https://b.example"


def connector(config, sleeps: list | None = None, env=None, **options) -> MastodonConnector:
    """A connector for `mastodon_source(**options)`, its `since` read in `config`'s event zone."""
    sleeps = [] if sleeps is None else sleeps
    http = HttpClient(client(), sleep=sleeps.append, clock=lambda: T0.timestamp())
    source = mastodon_source(zone=config.event.timezone, **options)
    return MastodonConnector(source, http=http, env=env or {})


def run(conn: MastodonConnector, cursor: dict | None, stop_after: int | None = None) -> list[Page]:
    """Pages of one run; stop_after simulates the process being killed after that many pages."""
    pages: list[Page] = []
    for page in conn.fetch(cursor):
        json.dumps(page.cursor)  # every cursor must be storable as JSON
        pages.append(page)
        if stop_after is not None and len(pages) == stop_after:
            break
    return pages


def ids(pages: list[Page]) -> list[str]:
    return [p.raw["id"] for page in pages for p in page.posts]


@respx.mock
def test_first_run_pages_back_through_link_next_to_the_end(config):
    inst = FakeInstance(A, many(95))
    inst.mount(respx)
    pages = run(connector(config), None)
    assert sorted(ids(pages), key=id_key) == [str(n) for n in range(1, 96)]
    assert [len(p.posts) for p in pages] == [40, 40, 15, 0]
    assert [r.get("max_id") for r in inst.requests] == [None, "56", "16", "1"]
    assert all(r["limit"] == "40" for r in inst.requests)
    state = pages[-1].cursor["streams"][f"{A} #copro16"]
    assert state == {"newest_id": "95", "backfill_max_id": "1", "backfill_done": True}


@respx.mock
def test_first_run_stops_paging_back_at_since(config):
    inst = FakeInstance(A, many(95))
    inst.mount(respx)
    since = (T0 + timedelta(minutes=50)).isoformat()
    pages = run(connector(config, since=since), None)
    assert sorted(ids(pages), key=id_key) == [str(n) for n in range(50, 96)]
    assert len(inst.requests) == 2  # the page that crossed `since` was the last one asked for
    assert pages[-1].cursor["streams"][f"{A} #copro16"]["backfill_done"] is True


@respx.mock
def test_later_runs_fetch_only_newer_via_min_id_without_gaps(config):
    inst = FakeInstance(A, many(30))
    inst.mount(respx)
    first = run(connector(config), None)
    inst.statuses += many(85, start=31)
    inst.requests.clear()
    second = run(connector(config), first[-1].cursor)
    assert sorted(ids(second), key=id_key) == [str(n) for n in range(31, 116)]
    assert [r.get("min_id") for r in inst.requests] == ["30", "70", "110", "115"]
    assert "max_id" not in str(inst.requests)  # the finished backfill is not repeated
    third = run(connector(config), second[-1].cursor)
    assert ids(third) == []


@pytest.mark.parametrize("stop_after", [1, 2, 3])
@respx.mock
def test_case_06_killed_run_resumes_with_no_gap_and_no_duplicate(config, stop_after):
    inst = FakeInstance(A, many(100, start=101))
    inst.mount(respx)
    killed = run(connector(config), None, stop_after=stop_after)
    inst.statuses += many(50, start=201)  # new posts arrive while we are down
    resumed = run(connector(config), killed[-1].cursor)
    seen = ids(killed) + ids(resumed)
    assert len(seen) == len(set(seen))
    assert sorted(seen, key=id_key) == [str(n) for n in range(101, 251)]


@respx.mock
def test_case_08_cursor_orders_ids_by_length_then_value_whatever_the_page_order(config):
    inst = FakeInstance(A, [make_status(i) for i in ["8", "9", "10", "11"]], shuffle=True)
    inst.mount(respx)
    pages = run(connector(config), None)
    assert pages[0].cursor["streams"][f"{A} #copro16"]["newest_id"] == "11"  # not "9"
    inst.statuses.append(make_status("12"))
    inst.requests.clear()
    again = run(connector(config), pages[-1].cursor)
    assert inst.requests[0]["min_id"] == "11" and ids(again) == ["12"]


@respx.mock
def test_case_08_non_numeric_ids_are_never_cast_to_int(config):
    flake = ["AbC9zQ", "AbC9zR", "AbD0aa"]  # Pleroma/Akkoma-style opaque ids
    FakeInstance(A, [make_status(i) for i in flake], shuffle=True).mount(respx)
    pages = run(connector(config), None)
    assert sorted(ids(pages)) == flake
    assert pages[0].cursor["streams"][f"{A} #copro16"]["newest_id"] == "AbD0aa"


@given(st.lists(st.integers(min_value=0, max_value=10**20), min_size=1, unique=True))
def test_case_08_id_key_orders_numeric_ids_like_numbers(numbers):
    assert sorted(map(str, numbers), key=id_key) == [str(n) for n in sorted(numbers)]


@respx.mock
def test_case_03_5xx_past_the_cap_keeps_fetched_pages_and_the_cursor(config):
    inst = FakeInstance(A, many(100))
    inst.mount(respx)
    inst.fail_after = 1
    sleeps: list[float] = []
    pages: list[Page] = []
    with pytest.raises(ConnectorError) as info:
        for page in connector(config, sleeps).fetch(None):
            pages.append(page)
    assert str(info.value).startswith("source 'mastodon': GET https://a.example/api/v1/timelines")
    assert "HTTP 503 after 5 attempts" in str(info.value)
    assert len(pages) == 1 and len(sleeps) == 4
    assert pages[0].cursor["streams"][f"{A} #copro16"]["backfill_max_id"] == "61"
    inst.fail_after = None
    rest = run(connector(config), pages[0].cursor)
    assert sorted(ids(pages) + ids(rest), key=id_key) == [str(n) for n in range(1, 101)]


@pytest.mark.parametrize("code", [401, 403, 422])
@respx.mock
def test_case_05_auth_refusal_names_the_token_setting_and_other_instances_still_run(config, code):
    bad = FakeInstance(A)
    bad.status_code = code
    bad_route = bad.mount(respx)
    FakeInstance(B, many(3)).mount(respx)
    pages: list[Page] = []
    with pytest.raises(ConnectorError) as info:
        for page in connector(config, instance=[A, B]).fetch(None):
            pages.append(page)
    assert bad_route.call_count == 1  # not retried
    assert sorted(ids(pages)) == ["1", "2", "3"]  # the good instance's posts were yielded
    message = str(info.value)
    assert f"Mastodon instance {A} needs a token (HTTP {code})" in message
    assert 'token_env = "AGGREGATOR_MASTODON_TOKEN"' in message and "'mastodon'" in message


@respx.mock
def test_case_37_token_from_the_named_env_var_is_sent_and_a_refusal_names_it(config):
    route = FakeInstance(A, many(1)).mount(respx)
    env = {"MASTO_A": "s3cret"}
    run(connector(config, env=env, token_env={A: "MASTO_A"}), None)
    assert route.calls.last.request.headers["authorization"] == "Bearer s3cret"
    respx.get(url__startswith=f"{B}/").mock(return_value=httpx.Response(401, json={}))
    with pytest.raises(ConnectorError, match="refused the token in env var MASTO_B"):
        run(connector(config, env={"MASTO_B": "x"}, instance=B, token_env="MASTO_B"), None)
    with pytest.raises(ConnectorError, match="set the env var MASTO_B"):
        run(connector(config, instance=B, token_env="MASTO_B"), None)


@respx.mock
def test_unknown_tag_is_no_posts_not_an_error(config):
    body = mastodon_fixture("error_404_record_not_found.json")
    respx.get(f"{A}/api/v1/timelines/tag/Nope").mock(return_value=httpx.Response(404, json=body))
    respx.get(f"{A}/api/v1/timelines/tag/Empty").mock(return_value=httpx.Response(200, json=[]))
    pages = run(connector(config, hashtags=["Nope", "Empty"]), None)
    assert ids(pages) == []


@respx.mock
def test_a_404_that_is_not_mastodon_is_an_error(config):
    respx.get(url__startswith=A).mock(return_value=httpx.Response(404, text="<html>Not Found"))
    with pytest.raises(ConnectorError, match=r"no Mastodon API at https://a\.example"):
        run(connector(config), None)


@respx.mock
def test_malformed_statuses_are_rejected_with_a_reason_and_the_rest_kept(config):
    good = many(2)
    no_account = {k: v for k, v in make_status("3").items() if k != "account"}
    bad_time = make_status("4", created_at="yesterday")
    inst = FakeInstance(A, [*good, no_account, bad_time])
    inst.mount(respx)
    pages = run(connector(config), None)
    assert sorted(ids(pages)) == ["1", "2"]
    reasons = [r for p in pages for r in p.rejected]
    assert reasons == [
        "a.example #CoPro16 status 4: created_at 'yesterday' is not ISO 8601",
        "a.example #CoPro16 status 3: missing account",
    ]
    assert pages[-1].cursor["streams"][f"{A} #copro16"]["newest_id"] == "4"


@respx.mock
def test_a_non_object_in_the_page_is_rejected(config):
    respx.get(url__startswith=A).mock(
        side_effect=[
            httpx.Response(200, json=["junk", make_status("5")]),
            httpx.Response(200, json=[]),
        ]
    )
    pages = run(connector(config), None)
    assert ids(pages) == ["5"] and pages[0].rejected == [
        "a.example #CoPro16 status #1: not a JSON object"
    ]


@respx.mock
def test_case_12_same_post_via_two_instances_and_two_tags_is_one_id_with_each_sighting(config):
    one = make_status("7", tag="CoPro16")
    one["tags"].append(
        {"name": "everyoneincluded", "url": "https://a.example/tags/everyoneincluded"}
    )
    on_b = copy.deepcopy(one) | {"id": "990001"}  # another instance, its own local id
    FakeInstance(A, [one]).mount(respx)
    FakeInstance(B, [on_b]).mount(respx)
    pages = run(connector(config, instance=[A, B], hashtags=["CoPro16", "EveryoneIncluded"]), None)
    posts = [p for page in pages for p in page.posts]
    assert {p.id for p in posts} == {one["uri"]}
    assert sorted(p.via for p in posts) == [
        "a.example #CoPro16",
        "a.example #EveryoneIncluded",
        "b.example #CoPro16",
        "b.example #EveryoneIncluded",
    ]


@respx.mock
def test_case_01_429_with_mastodon_reset_is_counted_on_the_page(config):
    reset = (T0 + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    respx.get(url__startswith=A).mock(
        side_effect=[
            httpx.Response(
                429, json={"error": "Too many requests"}, headers={"X-RateLimit-Reset": reset}
            ),
            httpx.Response(200, json=[make_status("1")]),
            httpx.Response(200, json=[]),
        ]
    )
    sleeps: list[float] = []
    pages = run(connector(config, sleeps), None)
    assert pages[0].waits == 1 and ids(pages) == ["1"] and 60 <= sleeps[0] <= 61


def test_status_fields_map_to_the_post():
    status = mastodon_fixture("status_entity_example.json")
    status["media_attachments"] = [mastodon_fixture("media_attachment_image_example.json")]
    status["mentions"] = [
        {"acct": "alice", "url": "https://mastodon.social/@alice"},
        {"acct": "bob@other.example", "url": "https://other.example/@bob"},
    ]
    post = post_from_status(status, "mastodon.social")
    assert post.platform == "mastodon" and post.id == status["uri"] and post.url == status["url"]
    assert post.author == "Gargron@mastodon.social" and post.author_name == "Eugen"
    assert post.text.startswith(
        '"I lost my inheritance with one wrong digit on my sort code"\n\nhttps://www.'
    )
    assert post.links == [status["card"]["url"]]
    assert (post.replies, post.reposts, post.likes, post.quotes) == (5, 6, 11, 2)
    assert post.lang == "en" and post.created_at == datetime(2019, 12, 8, 3, 48, 33, 901000, UTC)
    assert post.mentions == ["alice@mastodon.social", "bob@other.example"]
    assert post.media == [
        {
            "url": "https://files.mastodon.social/media_attachments/files/022/345/792/original/57859aede991da25.jpeg",
            "type": "image",
            "alt": "test media description",
        }
    ]
    assert post.raw == status and 'rel="noopener noreferrer nofollow"' in post.html


def test_case_11_edited_status_keeps_hashtags_and_edit_time():
    post = post_from_status(mastodon_fixture("status_with_hashtags_edited.json"), "mastodon.social")
    assert post.author == "chrismo@ruby.social"
    assert post.hashtags == ["MUSICTUESDAY", "piano", "neoclassical", "jazz"]
    assert post.edited_at == datetime(2022, 11, 15, 16, 10, 43, tzinfo=UTC)
    assert post.links == ["https://cstudios.bandcamp.com/track/celestia-gravity-assist-no-19-var-2"]
    assert "#musicTuesday\n\nHere's a solo #piano track" in post.text


def test_boost_is_stored_as_the_original_post():
    original = mastodon_fixture("status_with_hashtags_edited.json")
    boost = make_status(
        "500", reblog=original, content="", uri="https://a.example/users/x/statuses/500/activity"
    )
    post = post_from_status(boost, "a.example")
    assert post.id == original["uri"] and post.author == "chrismo@ruby.social"
    assert post.repost_of is None and post.raw["id"] == "500"


def test_html_is_sanitised_and_text_has_entities_decoded():
    status = make_status(
        "1", content="<p>a &amp; b<br>c<script>alert(1)</script><img src=x onerror=alert(1)></p>"
    )
    post = post_from_status(status, "a.example")
    assert post.text == "a & b\nc"
    assert "script" not in post.html and "onerror" not in post.html


@pytest.mark.parametrize(
    "account_change",
    [
        {"noindex": True},
        {
            "note": '<p>Hi <a href="https://x/tags/nobot" class="mention hashtag">#<span>NoBot</span></a></p>'
        },
        {"note": "<p>#nosearch please</p>"},
        {"fields": [{"name": "Policy", "value": "#noindex", "verified_at": None}]},
        {"fields": [{"name": "#nobots", "value": "yes", "verified_at": None}]},
    ],
    ids=["noindex", "nobot-link", "nosearch", "noindex-field", "nobots-field-name"],
)
def test_opted_out_accounts_are_skipped(account_change):
    status = make_status("1")
    status["account"].update(account_change)
    assert post_from_status(status, "a.example") is None


def test_indexable_false_is_not_an_opt_out():
    status = make_status("1")
    status["account"].update(indexable=False, noindex=False)
    assert post_from_status(status, "a.example") is not None


@respx.mock
def test_opted_out_posts_are_not_yielded_but_the_cursor_moves(config):
    hidden = make_status("2")
    hidden["account"]["noindex"] = True
    FakeInstance(A, [make_status("1"), hidden]).mount(respx)
    pages = run(connector(config), None)
    assert ids(pages) == ["1"] and pages[0].rejected == []
    assert pages[0].cursor["streams"][f"{A} #copro16"]["newest_id"] == "2"


def test_bad_options_are_refused_and_a_since_date_is_midnight_in_the_event_zone(project):
    config = in_zone(project, "Asia/Tokyo")
    zone = config.event.timezone
    assert parse_mastodon({"instance": "file:///etc"}, zone)[1] == [
        "instance: 'file:///etc' is not an http(s) URL"
    ]
    settings, problems = parse_mastodon({"instance": A, "since": "last week"}, zone)
    assert settings is None and [p.split(":")[0] for p in problems] == ["since"]
    conn = connector(config, instance=A + "/", since="2016-11-28")
    assert conn.instances == (A,)
    assert conn.since == datetime(2016, 11, 27, 15, tzinfo=UTC)  # midnight in Tokyo


def test_bad_retry_knobs_are_refused_and_good_ones_reach_the_http_client(config):
    for key, value in (("max_attempts", 0), ("max_attempts", 1.5), ("backoff_seconds", -1),
                       ("max_wait_seconds", "soon"), ("backoff_seconds", True)):  # fmt: skip
        settings, problems = parse_mastodon({"instance": A, key: value})
        assert settings is None and len(problems) == 1, problems
        assert problems[0].startswith(f"{key}: must be"), problems
    conn = connector(config, max_attempts=2, backoff_seconds=0, max_wait_seconds=0.5)
    http = conn.http
    assert (http.max_attempts, http.backoff, http.max_wait) == (2, 0, 0.5)


def test_a_reply_keeps_its_instance_local_parent_id_and_names_the_instance():
    reply = make_status("6", in_reply_to_id="5")
    post = post_from_status(reply, "b.example", instance="b.example:8443")
    assert (post.local_id, post.reply_to, post.reply_to_via) == ("6", "5", "b.example:8443")
    assert post.author.endswith("@b.example")  # an account's domain never carries the port
    alone = post_from_status(make_status("7"), "b.example")
    assert alone.local_id == "7" and alone.reply_to is None and alone.reply_to_via is None
    assert instance_key("https://user:pw@B.example:8443/x") == "b.example:8443"
    assert instance_key("https://mastodon.social") == "mastodon.social"


def _cue(sid: str, minutes: int, words: str, **changes: Any) -> dict:
    status = make_status(sid, minutes=minutes, **changes)
    status["content"] = f"<p>{words} #CoPro16</p>"
    return status


@respx.mock
def test_a_reply_with_no_cue_follows_its_parent_found_through_the_instance_it_came_from(
    config, engine
):
    parent_uri = "https://origin.example/users/carol/statuses/42"
    # On a.example the parent is local id 4; id 5 there is another post, about housing.
    FakeInstance(A, [
        _cue("4", 10, "Loved the Leg Club story", uri=parent_uri),
        _cue("5", 5, "Housing and homelessness matter", uri="https://a.example/s/decoy"),
    ]).mount(respx)  # fmt: skip
    # On b.example the same parent is local id 5, and the reply (no cue) points at it by that id.
    FakeInstance(B, [
        _cue("5", 10, "Loved the Leg Club story", uri=parent_uri),
        _cue("6", 20, "So true, thank you", in_reply_to_id="5", uri="https://b.example/s/reply"),
    ]).mount(respx)  # fmt: skip
    for page in run(connector(config, instance=[A, B]), None):
        save_page(engine, "mastodon", page)
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT reply_to, reply_to_via FROM post WHERE post_id = 'https://b.example/s/reply'"
        )).one()  # fmt: skip
        locals_ = set(conn.execute(text(
            "SELECT s.via, s.local_id FROM sighting s JOIN post p ON p.id = s.post_pk "
            "WHERE p.post_id = :uri"), {"uri": parent_uri}))  # fmt: skip
    assert tuple(stored) == ("5", "b.example")
    assert locals_ == {("a.example #CoPro16", "4"), ("b.example #CoPro16", "5")}

    tag(engine, config)
    with engine.connect() as conn:
        assigned = dict(conn.execute(text(
            "SELECT p.post_id, a.session_id || ' | ' || a.reason FROM assignment a "
            "JOIN post p ON p.id = a.post_pk")).all())  # fmt: skip
    assert assigned[parent_uri].startswith("session-3 | ")
    assert assigned["https://a.example/s/decoy"].startswith("session-6 | ")
    assert assigned["https://b.example/s/reply"] == (
        f"session-3 | reply to {parent_uri} ({assigned[parent_uri].split(' | ')[1]})"
    )
    (why,) = explain(engine, config, "https://b.example/s/reply")
    assert why.why.decision.session_id == "session-3" and why.post.reply_to == parent_uri


@respx.mock
def test_a_reply_whose_parent_was_not_collected_keeps_its_local_id(config, engine):
    FakeInstance(B, [_cue("6", 20, "So true", in_reply_to_id="5")]).mount(respx)
    for page in run(connector(config, instance=B), None):
        save_page(engine, "mastodon", page)
    tag(engine, config)
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT p.reply_to, a.session_id, a.reason FROM post p "
            "JOIN assignment a ON a.post_pk = p.id")).one()  # fmt: skip
    assert tuple(row) == ("5", "panel-opening", "posted during panel-opening")


@respx.mock
def test_a_reply_collected_before_its_parent_is_retagged_when_the_parent_arrives(config, engine):
    parent_uri = "https://origin.example/users/carol/statuses/42"
    reply = _cue("6", 20, "So true, thank you", in_reply_to_id="5", uri="https://b.example/s/reply")
    FakeInstance(B, [reply]).mount(respx)
    for page in run(connector(config, instance=B), None):
        save_page(engine, "mastodon", page)
    tag(engine, config)  # the parent is not stored yet: the reply goes by its own time
    respx.reset()
    FakeInstance(B, [_cue("5", 10, "Loved the Leg Club story", uri=parent_uri), reply]).mount(respx)
    for page in run(connector(config, instance=B), None):
        save_page(engine, "mastodon", page)
    summary = tag(engine, config)
    assert summary.tagged == 2  # the new parent, and the reply that was waiting for it
    with engine.connect() as conn:
        session, reason = conn.execute(text(
            "SELECT a.session_id, a.reason FROM assignment a JOIN post p ON p.id = a.post_pk "
            "WHERE p.post_id = 'https://b.example/s/reply'")).one()  # fmt: skip
    assert session == "session-3" and reason.startswith(f"reply to {parent_uri}")


@respx.mock
def test_exports_give_a_mastodon_reply_its_parents_id_when_the_parent_is_stored(config, engine):
    from reports.export import iter_records
    from reports.export_options import ExportOptions

    parent_uri = "https://origin.example/users/carol/statuses/42"
    FakeInstance(B, [
        _cue("5", 10, "Loved the Leg Club story", uri=parent_uri),
        _cue("6", 20, "So true, thank you", in_reply_to_id="5", uri="https://b.example/s/reply"),
        _cue("7", 25, "Me too", in_reply_to_id="99", uri="https://b.example/s/orphan"),
    ]).mount(respx)  # fmt: skip
    for page in run(connector(config, instance=B), None):
        save_page(engine, "mastodon", page)
    replies = {r["post_id"]: r["reply_to"] for r in iter_records(engine, config, ExportOptions())}
    assert replies["https://b.example/s/reply"] == parent_uri
    assert replies["https://b.example/s/orphan"] == "99"  # parent never collected: its local id
