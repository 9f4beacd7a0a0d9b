"""`aggregator serve`'s app (aggregator.web) over a real SQLite file, through httpx's ASGI
transport: the wall, sign-in and CSRF, decisions stored with who, when and what, the modes, the
allow and block lists, the safeguarding rules, hostile content, the event stream."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from aggregator.web.app import CSP, create_app, stream
from aggregator.web.auth import TOKEN_ENV
from connectors.base import Page, Post
from storage.moderation import DECISIONS, Decision, record
from storage.queries import save_page
from tests.helpers import invoke, with_curation

TOKEN = "a-long-test-token-0123456789"


class Browser:
    """One person's requests to the app: cookies kept between them, no redirect followed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cookies = httpx.Cookies()

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver", cookies=self.cookies
            ) as client:
                response = await client.request(method, url, **options)
                self.cookies = client.cookies
                return response

        return asyncio.run(send())

    def get(self, url: str) -> httpx.Response:
        return self.request("GET", url)

    def post(self, url: str, data: dict[str, str], **options: Any) -> httpx.Response:
        return self.request("POST", url, data=data, **options)

    def sign_in(self, who: str = "Alice") -> str:
        """Signs in; the session's CSRF token."""
        assert self.post("/login", {"who": who, "token": TOKEN}).status_code == 303
        page = self.get("/moderate")
        assert page.status_code == 200
        return re.search(r'name="csrf" value="([^"]+)"', page.text)[1]

    def decide(self, csrf: str, action: str, post: str = "", value: str = "") -> httpx.Response:
        data = {"csrf": csrf, "action": action, "value": value}
        if post:
            data |= {"platform": "mastodon", "post_id": post}
        return self.post("/moderate/decide", data)


@pytest.fixture
def now(config):
    return config.sessions[2].start + timedelta(minutes=30)


def add(engine, now, *posts: tuple[str, str], **fields: Any) -> None:
    """Posts (id, text) made a minute apart up to `now`, newest last."""
    made = [
        Post("mastodon", pid, now - timedelta(minutes=len(posts) - i), f"{pid}@example.org",
             text, url=f"https://example.org/@{pid}/1", **fields)
        for i, (pid, text) in enumerate(posts)
    ]  # fmt: skip
    save_page(engine, "test", Page(made))


@pytest.fixture
def app(config, engine, now):
    return create_app(config, TOKEN, engine=engine, clock=lambda: now)


def on_wall(app) -> str:
    """The wall's posts panel."""
    html = Browser(app).get("/wall").text
    return html.split('class="questions"')[0]


def decisions(engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(DECISIONS).order_by(DECISIONS.c.id)))


def test_the_wall_shows_the_live_session_and_the_newest_posts(app, engine, config, now):
    add(engine, now, ("p1", "Great start to the session"), ("p2", "Who is speaking next?"))
    response = Browser(app).get("/wall")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CSP
    session = config.sessions[2]
    assert re.search(rf"<h1>{re.escape(session.title)}</h1>", response.text.replace("&#39;", "'"))
    assert "Now" in response.text
    wall = on_wall(app)
    assert wall.index("Who is speaking next?") < wall.index("Great start to the session")


def test_a_post_made_after_the_clock_is_not_on_the_wall_yet(app, engine, now):
    add(engine, now + timedelta(hours=2), ("later", "Closing remarks"))
    assert "Closing remarks" not in on_wall(app)


def test_moderation_is_off_without_a_token(config, engine, now):
    add(engine, now, ("p1", "Hello"))
    app = create_app(config, None, engine=engine, clock=lambda: now)
    browser = Browser(app)
    page = browser.get("/moderate")
    assert page.status_code == 503 and TOKEN_ENV in page.text
    assert browser.post("/login", {"who": "x", "token": ""}).status_code == 403
    refused = browser.post("/moderate/decide", {"action": "hide", "platform": "mastodon",
                                                "post_id": "p1", "csrf": ""})  # fmt: skip
    assert refused.status_code == 403
    assert decisions(engine) == []
    assert "Hello" in on_wall(app)


def test_state_changes_need_the_session_and_its_csrf_token(app, engine, now):
    add(engine, now, ("p1", "Keep me"))
    stranger = Browser(app)
    assert stranger.get("/moderate").status_code == 401
    hide = {"action": "hide", "platform": "mastodon", "post_id": "p1"}
    assert stranger.post("/moderate/decide", hide).status_code == 401
    assert stranger.post("/login", {"who": "x", "token": TOKEN + "x"}).status_code == 401
    assert stranger.post("/moderate/decide", hide).status_code == 401
    assert stranger.post("/logout", {}).status_code == 401

    moderator = Browser(app)
    csrf = moderator.sign_in()
    assert moderator.post("/moderate/decide", hide).status_code == 403  # no CSRF token
    assert moderator.post("/moderate/decide", {**hide, "csrf": csrf[:-1]}).status_code == 403
    foreign = moderator.post("/moderate/decide", {**hide, "csrf": csrf},
                             headers={"origin": "https://evil.example"})  # fmt: skip
    assert foreign.status_code == 403
    assert decisions(engine) == []
    assert "Keep me" in on_wall(app)

    done = moderator.decide(csrf, "hide", "p1")
    assert done.status_code == 303
    assert "Keep me" not in on_wall(app)
    assert moderator.post("/logout", {"csrf": csrf}).status_code == 303
    assert moderator.decide(csrf, "unhide", "p1").status_code == 401  # signed out
    assert len(decisions(engine)) == 1


def test_each_decision_is_stored_with_who_when_and_what(app, engine, now):
    add(engine, now, ("p1", "First"), ("p2", "Second"))
    browser = Browser(app)
    csrf = browser.sign_in("  Sam   (comms) ")
    browser.decide(csrf, "pin", "p1")
    browser.decide(csrf, "mute", value="@P2@Example.org")
    rows = decisions(engine)
    assert [(r.who, r.at, r.action, r.platform, r.post_id, r.value) for r in rows] == [
        ("Sam (comms)", now, "pin", "mastodon", "p1", None),
        ("Sam (comms)", now, "mute", None, None, "p2@example.org"),
    ]
    wall = on_wall(app)
    assert "First" in wall and "Pinned" in wall and "Second" not in wall


def test_a_bad_decision_is_refused_and_nothing_is_stored(app, engine, now):
    browser = Browser(app)
    csrf = browser.sign_in()
    assert browser.decide(csrf, "delete-everything", "p1").status_code == 400
    assert browser.decide(csrf, "mode", value="sometimes").status_code == 400
    assert browser.decide(csrf, "block", value="two words").status_code == 400
    assert browser.post("/moderate/decide", {"csrf": csrf, "action": "hide"}).status_code == 400
    assert decisions(engine) == []


def test_manual_mode_shows_only_approved_posts_and_allowed_accounts(app, engine, now):
    add(engine, now, ("p1", "Waiting for approval"), ("trusted", "From the organisers"))
    browser = Browser(app)
    csrf = browser.sign_in()
    browser.decide(csrf, "mode", value="manual")
    wall = on_wall(app)
    assert "Waiting for approval" not in wall and "From the organisers" not in wall
    assert "pending" in browser.get("/moderate").text
    browser.decide(csrf, "approve", "p1")
    browser.decide(csrf, "allow", value="trusted@example.org")
    wall = on_wall(app)
    assert "Waiting for approval" in wall and "From the organisers" in wall
    browser.decide(csrf, "mode", value="automatic")
    browser.decide(csrf, "unallow", value="trusted@example.org")
    assert "From the organisers" in on_wall(app)


def test_blocked_words_accounts_and_the_default_profanity_list(app, engine, now):
    add(engine, now, ("rude", "This is shit"), ("word", "Scaling is hard"),
        ("person", "Nice talk"), ("fine", "Lovely session"))  # fmt: skip
    browser = Browser(app)
    csrf = browser.sign_in()
    assert "This is shit" not in on_wall(app)  # the default list, in automatic mode
    browser.decide(csrf, "block-word", value="SCALING")
    browser.decide(csrf, "block", value="person@example.org")
    wall = on_wall(app)
    assert "Scaling is hard" not in wall and "Nice talk" not in wall
    assert "Lovely session" in wall
    assert "blocked word “scaling”" in browser.get("/moderate").text
    browser.decide(csrf, "allow-word", value="shit")
    browser.decide(csrf, "unblock-word", value="scaling")
    browser.decide(csrf, "approve", "person")  # one post of a blocked account, approved
    wall = on_wall(app)
    assert "This is shit" in wall and "Scaling is hard" in wall and "Nice talk" in wall


def test_a_health_disclosure_is_held_in_either_mode_until_approved(app, engine, now):
    add(engine, now, ("ill", "I was diagnosed with breast cancer last year and this matters to me"))
    browser = Browser(app)
    csrf = browser.sign_in()
    assert "diagnosed" not in on_wall(app)
    assert "held until a moderator approves it" in browser.get("/moderate").text
    browser.decide(csrf, "allow", value="ill@example.org")
    browser.decide(csrf, "mode", value="manual")
    assert "diagnosed" not in on_wall(app)  # an allowed account's disclosure is held too
    browser.decide(csrf, "approve", "ill")
    assert "diagnosed" in on_wall(app)


def test_identifiers_are_redacted_on_the_wall_and_the_queue(app, engine, now):
    add(engine, now, ("id", "Call me on 07700 900123 or write to jo.bloggs@gmail.com"))
    browser = Browser(app)
    browser.sign_in()
    for page in (on_wall(app), browser.get("/moderate").text):
        assert "07700 900123" not in page and "jo.bloggs@gmail.com" not in page
        assert "[phone removed]" in page and "[e-mail removed]" in page


def test_hostile_content_is_inert(app, engine, now):
    html = ('<p>Hi <script>alert(1)</script><a href="javascript:alert(2)">x</a>'
            '<img src="https://tracker.example/p.gif" onerror="alert(3)"></p>')  # fmt: skip
    add(engine, now, ("evil", "Hi <script>alert(1)</script> \u202eevil"), html=html)
    browser = Browser(app)
    browser.sign_in()
    for page in (browser.get("/wall").text, browser.get("/moderate").text):
        assert "<script>alert" not in page and "javascript:" not in page
        assert "onerror" not in page and "tracker.example" not in page and "\u202e" not in page
        assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/live.js" defer>']
    assert "script-src 'self'" in CSP and "default-src 'none'" in CSP


def test_the_event_stream_sends_the_wall_again_only_when_it_changes():
    states = iter([("a", "1"), ("a", "1"), ("b", "2"), ("b", "2")])
    slept: list[float] = []

    async def read() -> tuple[str, str]:
        return next(states)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def first(count: int) -> list[str]:
        events = stream(read, "wall", 0.5, sleep)
        got = [await anext(events) for _ in range(count)]
        await events.aclose()
        return got

    got = asyncio.run(first(2))
    assert got == ["event: wall\ndata: 1\n\n", "event: wall\ndata: 2\n\n"]
    assert slept == [0.5, 0.5]  # read again every interval; nothing sent while unchanged


def test_the_wall_events_carry_the_panels(app, engine, now):
    add(engine, now, ("p1", "Streamed post"))
    live = app.state.live

    async def one() -> str:
        response = await live.wall_events(None)
        event = await anext(response.body_iterator)
        await response.body_iterator.aclose()
        return event

    event = asyncio.run(one())
    assert event.startswith("event: wall\ndata: ")
    assert "Streamed post" in json.loads(event.split("data: ", 1)[1])["html"]


def test_the_curation_file_wins_and_the_disagreement_is_shown(project, engine, now):
    config = with_curation(project, '[[highlight]]\nid = "p1"\n')
    add(engine, now, ("p1", "Pinned by the organisers"))
    record(engine, Decision("hide", "Alice", ("mastodon", "p1")))
    app = create_app(config, TOKEN, engine=engine, clock=lambda: now)
    assert "Pinned by the organisers" in on_wall(app)
    browser = Browser(app)
    browser.sign_in()
    page = browser.get("/moderate").text
    assert "The curation file and the decisions disagree" in page
    assert "mastodon post p1: Alice at" in page and "highlight[0] says highlight" in page
    result = invoke(project, "tag")
    assert "mastodon post p1: Alice at" in result.stderr


def test_serve_refuses_a_port_in_use_in_one_line(project):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        result = invoke(project, "serve", "--port", str(port), env={TOKEN_ENV: TOKEN})
    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert TOKEN not in result.output + result.stderr


def test_serve_warns_without_a_token_and_refuses_an_address_it_does_not_have(project):
    # TEST-NET-3: no machine's own address; binding fails at once, nothing is sent
    result = invoke(project, "serve", "--host", "203.0.113.7", env={TOKEN_ENV: None})
    assert result.exit_code == 2
    assert f"moderation is off: set {TOKEN_ENV}" in result.stderr
    assert "listening on 203.0.113.7 without" in result.stderr
    assert "cannot listen on 203.0.113.7:8765" in result.stderr


def test_report_warns_where_the_curation_file_and_a_decision_disagree(project, engine, now):
    with_curation(project, '[[exclude]]\nid = "p1"\n')
    add(engine, now, ("p1", "Left out by the organisers"))
    record(engine, Decision("approve", "Sam", ("mastodon", "p1")))
    result = invoke(project, "report")
    assert result.exit_code == 0
    assert (
        "mastodon post p1: Sam at" in result.stderr and "exclude[0] says exclude" in result.stderr
    )
