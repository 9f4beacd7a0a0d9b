"""The ASGI app behind `aggregator serve` (docs/live.md, "The wall and moderation"): Starlette,
Jinja2 templates (autoescaped; post HTML only through the story's sanitiser), server-sent events for
updates, a small script and stylesheet served from the app itself under a strict
Content-Security-Policy: the pages make no request anywhere else.

    /wall                the venue screen (read-only, no sign-in)
    /wall/events         its updates: the wall's panels again, whenever what they show changed
    /moderate            the moderators' queue, lists and mode (signed in)
    /moderate/events     "something new" for an open queue
    POST /login, /logout, /moderate/decide   each needs the moderator's session; all but /login its
                         CSRF token too
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aggregator.clock import utcnow
from aggregator.errors import AggregatorError
from aggregator.settings import Config
from aggregator.web.auth import COOKIE, LIFETIME, TOKEN_ENV, Session, Sessions
from aggregator.web.rules import STATUSES
from aggregator.web.wall import Reader, Snapshot
from reports.render import TIME_FILTERS, safe_url, sanitised
from reports.text import clean_text
from storage.db import open_database
from storage.moderation import ACCOUNT_ACTIONS, MODES, POST_ACTIONS, WORD_ACTIONS, Decision, record

__all__ = ["CSP", "create_app", "stream"]

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
# Nothing but this app's own script, styles and (none yet) images; no frames, no other origins.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")  # fmt: skip
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # forms then carry their Origin, checked on POST
    "cache-control": "no-store",
}
KEEPALIVE = 15.0  # seconds between comments on a quiet event stream (proxies drop silent ones)
NEXT = re.compile(r"#c\d+")  # where a decision returns to on the queue: a card's anchor
ACTIONS = {*POST_ACTIONS, *ACCOUNT_ACTIONS, *WORD_ACTIONS, "mode"}
OFF = (f"Moderation is off: set {TOKEN_ENV} to a long random secret in the environment of "
       "`aggregator serve` and start it again.")  # fmt: skip


class SecurityHeaders:
    """Pure ASGI middleware: every response gets the CSP and its companions (streams too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])]
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def stream(
    read: Callable[[], Awaitable[tuple[Any, str]]], event: str, interval: float,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> AsyncIterator[str]:  # fmt: skip
    """Server-sent events: `read()` every `interval` seconds gives (key, data); an `event` with
    the data whenever the key changed, a comment now and then when nothing did."""
    last, quiet = object(), 0.0
    while True:
        key, data = await read()
        if key != last:
            last, quiet = key, 0.0
            yield f"event: {event}\ndata: {data}\n\n"
        elif quiet >= KEEPALIVE:
            quiet = 0.0
            yield ": still here\n\n"
        await sleep(interval)
        quiet += interval


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("aggregator.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=lambda v: "" if v is None else clean_text(v) if type(v) is str else v,
    )
    env.filters.update(sanitised=sanitised, safe_url=safe_url, **TIME_FILTERS,
                       hashtag=lambda tag: "#" + str(tag).lstrip("#"))  # fmt: skip
    return env


class LiveApp:
    """The pages and their handlers, over one Reader and one set of sessions."""

    def __init__(
        self, config: Config, engine: Engine, token: str | None,
        clock: Callable[[], datetime], interval: float, sleep: Callable[[float], Awaitable[Any]],
    ) -> None:  # fmt: skip
        self.config, self.engine, self.interval, self.sleep = config, engine, interval, sleep
        self.clock = clock
        self.reader = Reader(engine, config, clock)
        self.sessions = Sessions(token, clock)
        self.env = _environment()
        self._lock = threading.Lock()  # one snapshot read at a time; screens share it

    def snapshot_now(self) -> Snapshot:
        with self._lock:
            return self.reader.snapshot()

    async def snapshot(self) -> Snapshot:
        return await run_in_threadpool(self.snapshot_now)

    def page(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**values)
        return HTMLResponse(html, status_code=status)

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    # ---- the wall ----

    async def wall(self, request: Request) -> Response:
        return self.page("wall.html.j2", s=await self.snapshot())

    async def wall_events(self, request: Request) -> Response:
        async def read() -> tuple[Any, str]:
            s = await self.snapshot()
            html = self.env.get_template("_wall.html.j2").render(s=s)
            return s.key, json.dumps({"html": html})

        return _events(stream(read, "wall", self.interval, self.sleep))

    # ---- moderation ----

    async def moderate(self, request: Request) -> Response:
        if not self.sessions.enabled:
            return self.page("message.html.j2", 503, title="Moderation is off", message=OFF)
        session = self.session(request)
        if session is None:
            return self.page("signin.html.j2", 401, error=None)
        return self.page(
            "moderate.html.j2", s=await self.snapshot(), session=session, statuses=STATUSES,
            modes=MODES,
        )  # fmt: skip

    async def moderate_events(self, request: Request) -> Response:
        if self.session(request) is None:
            return Response("Sign in first.", 401, media_type="text/plain")

        async def read() -> tuple[Any, str]:
            s = await self.snapshot()
            return s.key, json.dumps({"changed": True})

        return _events(stream(read, "changed", self.interval, self.sleep))

    async def login(self, request: Request) -> Response:
        if refused := _foreign(request):
            return refused
        if not self.sessions.enabled:
            return self.page("message.html.j2", 403, title="Moderation is off", message=OFF)
        form = await request.form()
        session = self.sessions.sign_in(_field(form, "who"), _field(form, "token"))
        if session is None:
            log.warning("moderation: a sign-in with the wrong token was refused")
            return self.page("signin.html.j2", 401, error="That is not the moderators' token.")
        response = RedirectResponse("/moderate", 303)
        response.set_cookie(COOKIE, session.id, max_age=int(LIFETIME.total_seconds()),
                            httponly=True, samesite="strict", path="/")  # fmt: skip
        return response

    async def logout(self, request: Request) -> Response:
        session, refused = await self._authorised(request)
        if session is None:
            return refused
        self.sessions.end(session.id)
        response = RedirectResponse("/moderate", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def decide(self, request: Request) -> Response:
        session, refused = await self._authorised(request)
        if session is None:
            return refused
        form = await request.form()
        action = _field(form, "action")
        if action not in ACTIONS:
            return _plain(400, f"unknown action {action[:40]!r}")
        post = (_field(form, "platform"), _field(form, "post_id"))
        decision = Decision(action, session.who, post if action in POST_ACTIONS else None,
                            _field(form, "value") or None)  # fmt: skip
        try:
            curation = self.reader.curation()
            await run_in_threadpool(record, self.engine, decision, curation, self.clock())
        except ValueError as exc:
            return _plain(400, str(exc))
        except AggregatorError as exc:
            return _plain(503, str(exc))
        back = _field(form, "next")
        return RedirectResponse("/moderate" + (back if NEXT.fullmatch(back) else ""), 303)

    async def _authorised(self, request: Request) -> tuple[Session | None, Response]:
        """The moderator's session, or None and the refusal: 401 without a session, 403 without
        the session's CSRF token or from another origin (and always when moderation is off)."""
        if refused := _foreign(request):
            return None, refused
        if not self.sessions.enabled:
            return None, _plain(403, OFF)
        session = self.session(request)
        if session is None:
            return None, _plain(401, "Sign in on /moderate first.")
        form = await request.form()
        if not self.sessions.csrf_ok(session, _field(form, "csrf")):
            return None, _plain(403, "The form's CSRF token is missing or wrong: reload /moderate.")
        return session, Response(status_code=204)


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status, media_type="text/plain; charset=utf-8")


def _foreign(request: Request) -> Response | None:
    """A 403 for a form posted from another site (its Origin is not this server)."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        return _plain(403, "Refused: the form was not sent from this server's own pages.")
    return None


def _events(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"x-accel-buffering": "no"}
    )


def create_app(
    config: Config,
    token: str | None = None,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = utcnow,
    interval: float = 1.0,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Starlette:
    """The wall and moderation app for `config`. `token`: the moderators' secret (None: moderation
    is off, the wall still shows); `engine`: the database (opened from the config when None, and
    closed with the app); `clock`, `interval` and `sleep`: how time passes, for tests."""
    own = engine is None
    engine = engine if engine is not None else open_database(config.database_url)
    live = LiveApp(config, engine, token, clock, interval, sleep)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if own:
            engine.dispose()

    routes = [
        Route("/", lambda r: RedirectResponse("/wall", 307)),
        Route("/favicon.ico", lambda r: Response(status_code=204)),  # none: no request in vain
        Route("/wall", live.wall),
        Route("/wall/events", live.wall_events),
        Route("/moderate", live.moderate),
        Route("/moderate/events", live.moderate_events),
        Route("/moderate/decide", live.decide, methods=["POST"]),
        Route("/login", live.login, methods=["POST"]),
        Route("/logout", live.logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.live = live
    app.add_middleware(SecurityHeaders)
    return app
