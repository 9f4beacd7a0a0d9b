"""What the wall and the moderation page show, read from the database: the newest posts (and every
pinned post and question for the chair), each as the story shows it (reports.story.shown_post:
sanitised, personal identifiers redacted) with the wall's verdict on it (aggregator.web.rules), the
live session from the programme, and the counts.

`Reader.snapshot` reads again only when something it reads changed (a post stored or changed, a
decision, the curation file, the live session): the server polls it every second for every screen.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, false, func, or_, select
from sqlalchemy.engine import Connection, Engine

from aggregator.clock import EventClock, utcnow
from aggregator.curation import Curation, CurationError, load_curation
from aggregator.privacy import opt_out_redactor
from aggregator.safeguarding import disclosure
from aggregator.scrubber import account_key
from aggregator.settings import Config, SessionConfig
from aggregator.web.rules import STATUSES, Verdict, verdict
from connectors.undated import UNDATED
from reports.model import PostView
from reports.story import Shown, shown_post
from storage.inputs import posts_state
from storage.models import POST_TABLE, PostAnalysis
from storage.moderation import DECISIONS, State, disagreements, read_state

__all__ = ["Card", "Live", "Reader", "Snapshot", "live_session"]

log = logging.getLogger(__name__)

POSTS = POST_TABLE
ANALYSIS = PostAnalysis.__table__  # type: ignore[attr-defined]
CANDIDATES = 150  # the newest posts read for the wall and the queue
WALL_POSTS, WALL_PINNED, WALL_QUESTIONS = 4, 1, 2  # what the venue screen has room for
SEEN_CAP = 5000  # posts whose card is kept between snapshots
SKEW = timedelta(minutes=5)  # a post this far "in the future" is still shown
NEXT_WITHIN = timedelta(hours=3)  # a session starting this soon is shown as "Next"


@dataclass(frozen=True)
class Live:
    """The session on now (or next), as the wall heads itself."""

    when: str  # "Now" | "Next"
    label: str  # "Session 2"
    title: str
    span: str  # "10:15–11:00"
    speakers: tuple[str, ...] = ()


@dataclass
class Card:
    """One post with what the wall does with it."""

    pk: int
    platform: str
    post_id: str
    account: str
    view: PostView
    verdict: Verdict
    pinned: bool
    question: bool


@dataclass
class Snapshot:
    """Everything both pages show, read at one moment."""

    event: str
    hashtags: list[str]
    live: Live | None
    cards: list[Card]  # newest first
    counts: dict[str, int]
    state: State
    problems: list[str] = field(default_factory=list)  # the curation file and decisions disagree
    key: Any = None

    @property
    def wall(self) -> list[Card]:
        """The posts on the screen: pinned ones first, then the newest shown."""
        shown = [c for c in self.cards if c.verdict.shown]
        pinned = [c for c in shown if c.pinned][:WALL_PINNED]
        rest = [c for c in shown if c not in pinned]
        return (pinned + rest)[:WALL_POSTS]

    @property
    def questions(self) -> list[Card]:
        return [c for c in self.cards if c.question and c.verdict.shown][:WALL_QUESTIONS]

    @property
    def statuses(self) -> dict[str, int]:
        return {s: sum(c.verdict.status == s for c in self.cards) for s in STATUSES}


def live_session(config: Config, now: datetime) -> Live | None:
    """The session on at `now`, else the next one starting within NEXT_WITHIN, else None."""
    clock = EventClock(config.event.timezone)

    def live(when: str, s: SessionConfig) -> Live:
        return Live(when, s.label, s.title, clock.span(s.start, s.end), s.speakers)

    for s in config.sessions:
        if s.start <= now < s.end:
            return live("Now", s)
    upcoming = [s for s in config.sessions if now < s.start <= now + NEXT_WITHIN]
    return live("Next", min(upcoming, key=lambda s: s.start)) if upcoming else None


class Reader:
    """Reads snapshots for the pages, again only when what they show changed."""

    def __init__(
        self, engine: Engine, config: Config, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine, self.config, self.clock = engine, config, clock
        self._curation: tuple[Any, Curation] = (None, Curation())
        self._seen: dict[tuple[int, Any], tuple[PostView, str, bool]] = {}
        self._last: Snapshot | None = None

    def curation(self) -> Curation:
        """The curation file, read again when it changes; a file that became unusable mid-event
        leaves the last good one in force, with a warning."""
        path = self.config.curation
        if path is None:
            return Curation()
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp != self._curation[0]:
            try:
                self._curation = (stamp, load_curation(self.config))
            except CurationError as exc:
                log.warning("%s; the wall keeps the curation it had", exc)
                self._curation = (stamp, self._curation[1])
        return self._curation[1]

    def snapshot(self) -> Snapshot:
        curation = self.curation()
        now = self.clock()
        live = live_session(self.config, now)
        with self.engine.connect() as conn:
            decided = conn.execute(select(func.max(DECISIONS.c.id))).scalar()
            key = (
                posts_state(conn),
                decided,
                self._curation[0],
                live,
                now.replace(second=0, microsecond=0),
            )
            if self._last is not None and self._last.key == key:
                return self._last
            state = read_state(conn)
            cards = self._cards(conn, state, curation, now)
            counts = self._counts(conn, now)
        problems = disagreements(self.engine, curation) if state.last else []
        self._last = Snapshot(
            self.config.event.name, list(self.config.event.hashtags), live, cards, counts, state,
            problems, key,
        )  # fmt: skip
        return self._last

    def _visible(self, now: datetime) -> list[Any]:
        """Posts the wall may show at all: not deleted, made by now (a platform's clock may run a
        little fast), with a time, no repost, not opted out."""
        where = [
            POSTS.c.deleted_at.is_(None),
            POSTS.c.created_at != UNDATED,
            POSTS.c.created_at <= now + SKEW,
            func.coalesce(POSTS.c.repost_of, "") == "",
        ]
        opted_out = sorted({account_key(a) for a in self.config.privacy.opt_out if a.strip()})
        if opted_out:
            where.append(func.lower(func.ltrim(POSTS.c.author, "@")).not_in(opted_out))
        return where

    def _cards(
        self, conn: Connection, state: State, curation: Curation, now: datetime
    ) -> list[Card]:
        columns = select(
            POSTS, ANALYSIS.c.disclosure.label("flagged"), ANALYSIS.c.role.label("profile"),
            false().label("pinned"),
        ).outerjoin(ANALYSIS, ANALYSIS.c.post_pk == POSTS.c.id)  # fmt: skip
        visible = self._visible(now)
        newest = columns.where(*visible).order_by(POSTS.c.created_at.desc(), POSTS.c.id.desc())
        rows = {r.id: r for r in conn.execute(newest.limit(CANDIDATES))}
        wanted = _wanted(state, curation)
        if wanted is not None:  # pinned posts and questions, however old
            rows.update({r.id: r for r in conn.execute(columns.where(*visible, wanted))})
        shown = Shown(self.config, opt_out_redactor(conn, self.config.privacy.opt_out))
        ordered = sorted(rows.values(), key=lambda r: (r.created_at, r.id), reverse=True)
        return [self._card(r, state, curation, shown) for r in ordered]

    def _card(self, row: Any, state: State, curation: Curation, shown: Shown) -> Card:
        seen = (row.id, row.updated_at)
        if len(self._seen) > SEEN_CAP:
            self._seen.clear()
        if seen not in self._seen:
            view = shown_post(row, self.config, shown)
            text = shown.unseen(row.text or "")
            flagged = bool(row.flagged) or disclosure(text, row.profile) is not None
            self._seen[seen] = (view, text, flagged)
        view, text, flagged = self._seen[seen]
        account = account_key(row.author)
        post = state.post(row.platform, row.post_id)
        filed = [e.where for e in curation.for_post(row.platform, row.post_id, row.url)]
        said = verdict(account, text, state, post, filed, curation.muted(row.author), flagged)
        pinned = bool(post.pinned) or any(w.startswith("highlight") for w in filed)
        pinned = pinned and said.shown
        return Card(
            row.id, row.platform, row.post_id, account, dataclasses.replace(view, pinned=pinned),
            said, pinned, bool(post.question),
        )  # fmt: skip

    def _counts(self, conn: Connection, now: datetime) -> dict[str, int]:
        """Posts and people so far, and the posts in the session on now."""
        on = next((s for s in self.config.sessions if s.start <= now < s.end), None)
        during = (
            and_(POSTS.c.created_at >= on.start, POSTS.c.created_at < on.end) if on else false()
        )
        row = conn.execute(
            select(func.count(), func.count(func.distinct(func.lower(POSTS.c.author))),
                   func.sum(case((during, 1), else_=0))).where(*self._visible(now))
        ).one()  # fmt: skip
        return {"posts": row[0] or 0, "people": row[1] or 0, "session": int(row[2] or 0)}


def _wanted(state: State, curation: Curation) -> Any:
    """The posts pinned or made questions (by a moderator or the curation file), or None."""
    keys = [k for k, p in state.posts.items() if p.pinned or p.question]
    named = [and_(POSTS.c.platform == p, POSTS.c.post_id == i) for p, i in keys]
    pins = [e for e in curation.entries if e.action == "highlight"]
    named += [POSTS.c.post_id == e.post_id for e in pins if e.post_id is not None]
    urls = _urls(e.url for e in pins)
    if urls:
        named.append(POSTS.c.url.in_(urls))
    return or_(*named) if named else None


def _urls(urls: Iterable[str | None]) -> list[str]:
    """Each url as written and without its trailing '/' (curation.Entry.matches ignores it)."""
    given = [u.strip() for u in urls if u]
    return sorted({*given, *(u.rstrip("/") for u in given)})
