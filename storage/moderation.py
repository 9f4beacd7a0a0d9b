"""Moderators' decisions from the live wall (`aggregator serve`, docs/live.md): every decision is a
row of `moderationdecision` (who, when, what), written once and never changed; the state in force is
the decisions replayed in order. `moderated` folds that state into the organisers' curation
(aggregator.curation) so the story, the tagging and the exports apply a hide, pin, mute or question
exactly as they apply the curation file: hidden = excluded, pinned = highlighted, muted = muted,
a question for the chair = a question.

Where the curation file and a decision disagree, the file wins, and `disagreements` names the post
and both sides (`aggregator tag`, `report` and the moderation page show them): never silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Column, Field, SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

from aggregator.clock import iso_utc, utcnow
from aggregator.curation import Curation, Entry
from aggregator.scrubber import account_key
from storage.db import writer
from storage.models import POST_TABLE, Assignment
from storage.queries import storage_errors

__all__ = [
    "ACCOUNT_ACTIONS",
    "DECISIONS",
    "MODES",
    "POST_ACTIONS",
    "WORD_ACTIONS",
    "Decision",
    "ModerationDecision",
    "PostState",
    "Said",
    "State",
    "disagreements",
    "moderated",
    "read_state",
    "record",
]

log = logging.getLogger(__name__)

POSTS = POST_TABLE
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
# What a decision can say, by what it is about. A post: shown or hidden on the wall (approve, hide,
# unhide = back to the mode's rule), pinned, a question for the chair. An account: muted (left out
# of the wall and the story), allowed (shown without approval in manual mode) or blocked. A word:
# allowed (never counts as a blocked word, e.g. a place name) or blocked. The wall's mode.
POST_ACTIONS = ("approve", "hide", "unhide", "pin", "unpin", "question", "unquestion")
ACCOUNT_ACTIONS = ("mute", "unmute", "allow", "unallow", "block", "unblock")
WORD_ACTIONS = ("allow-word", "unallow-word", "block-word", "unblock-word")
MODES = ("automatic", "manual")  # shown unless blocked | shown only once approved
LISTS = {"allow": "allowed", "block": "blocked", "allow-word": "allowed_words",
         "block-word": "blocked_words"}  # fmt: skip
WHO_CAP, VALUE_CAP = 80, 200  # characters kept of a moderator's name and of a word or account


class ModerationDecision(SQLModel, table=True):
    """One moderator's decision: who, when, and what about which post, account or word."""

    __tablename__ = "moderationdecision"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    who: str
    action: str  # POST_ACTIONS, ACCOUNT_ACTIONS, WORD_ACTIONS or "mode"
    platform: str | None = None  # a post's platform and id
    post_id: str | None = None
    value: str | None = Field(default=None, sa_column=Column(Text))  # account key, word or mode


@dataclass(frozen=True)
class Decision:
    """A decision to record: `post` (platform, post id) for a post action, `value` (an account,
    a word or a mode) for the others."""

    action: str
    who: str = "moderator"
    post: tuple[str, str] | None = None
    value: str | None = None

    def checked(self) -> Decision:
        """This decision with its account or word in the form it is compared in; ValueError
        naming what is wrong."""
        who = " ".join(self.who.split())[:WHO_CAP] or "moderator"
        if self.action in POST_ACTIONS:
            if self.post is None or not all(self.post):
                raise ValueError(f"{self.action} needs the post's platform and id")
            return replace(self, who=who, value=None)
        value = " ".join((self.value or "").split())
        if self.action in ACCOUNT_ACTIONS:
            value = account_key(value)
        elif self.action in WORD_ACTIONS:
            value = value.casefold()
        elif self.action == "mode":
            if value not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)} (got {value!r})")
        else:
            known = ", ".join([*POST_ACTIONS, *ACCOUNT_ACTIONS, *WORD_ACTIONS, "mode"])
            raise ValueError(f"unknown action {self.action!r} (use one of: {known})")
        if not value or len(value) > VALUE_CAP or (self.action in ACCOUNT_ACTIONS and " " in value):
            raise ValueError(
                f"{self.action} needs an account or word of 1 to {VALUE_CAP} characters"
            )
        return replace(self, who=who, post=None, value=value)


@dataclass(frozen=True)
class Said:
    """Who made the decision in force, and when."""

    who: str
    at: datetime

    def __str__(self) -> str:
        return f"{self.who} at {iso_utc(self.at)}"


@dataclass
class PostState:
    """What the decisions say of one post; None where none was made."""

    shown: str | None = None  # approve | hide | unhide: the last of them
    pinned: bool | None = None
    question: bool | None = None
    said: dict[str, Said] = field(default_factory=dict)  # "shown", "pinned", "question" -> who

    @property
    def hidden(self) -> bool:
        return self.shown == "hide"


@dataclass
class State:
    """Every decision replayed in order: the state in force."""

    posts: dict[tuple[str, str], PostState] = field(default_factory=dict)
    muted: dict[str, Said] = field(default_factory=dict)  # account key -> who muted it
    unmuted: dict[str, Said] = field(default_factory=dict)  # said explicitly, and not muted since
    allowed: set[str] = field(default_factory=set)  # accounts
    blocked: set[str] = field(default_factory=set)
    allowed_words: set[str] = field(default_factory=set)
    blocked_words: set[str] = field(default_factory=set)
    mode: str = "automatic"
    last: int = 0  # the highest decision id replayed: anything new moves it

    def post(self, platform: str, post_id: str) -> PostState:
        return self.posts.get((platform, post_id)) or PostState()

    def apply(self, row: Any) -> None:
        """One stored decision, on top of those before it."""
        said, action, value = Said(row.who, row.at), row.action, row.value or ""
        self.last = max(self.last, row.id or 0)
        if action in POST_ACTIONS:
            post = self.posts.setdefault((row.platform, row.post_id), PostState())
            if action in ("approve", "hide", "unhide"):
                post.shown, post.said["shown"] = action, said
            elif action in ("pin", "unpin"):
                post.pinned, post.said["pinned"] = action == "pin", said
            else:
                post.question, post.said["question"] = action == "question", said
        elif action in ("mute", "unmute"):
            self.muted.pop(value, None)
            self.unmuted.pop(value, None)
            (self.muted if action == "mute" else self.unmuted)[value] = said
        elif action == "mode":
            self.mode = value
        else:  # an allow or block list: accounts or words
            listed = getattr(self, LISTS[action.removeprefix("un")])
            (listed.discard if action.startswith("un") else listed.add)(value)

    def story_digest(self) -> str:
        """What of this state the story reads (hides, pins, mutes, questions), as a digest: the
        tagging fingerprint folds it in, so a change re-tags and rebuilds the story."""
        posts = sorted(
            [list(k), p.hidden, bool(p.pinned), bool(p.question), p.shown == "approve",
             p.pinned is False]
            for k, p in self.posts.items()
        )  # fmt: skip
        data = [posts, sorted(self.muted), sorted(self.unmuted)]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


DECISIONS = ModerationDecision.__table__  # type: ignore[attr-defined]


def record(
    engine: Engine, decision: Decision, curation: Curation | None = None,
    at: datetime | None = None,
) -> int:  # fmt: skip
    """Store `decision` (checked: ValueError names what is wrong) in one transaction, with the
    post's stored flags (`assignment.excluded`, `.highlight`) brought in line at once, so exports
    follow a hide before the next tagging. Waits for another writer up to the busy timeout, never
    needs the writers' lock. `at`: when it was made (now by default). Returns the decision's id."""
    d = decision.checked()
    platform, post_id = d.post or (None, None)
    row = {"at": at or utcnow(), "who": d.who, "action": d.action, "platform": platform,
           "post_id": post_id, "value": d.value}  # fmt: skip
    with storage_errors("could not save the moderation decision"), writer(engine).begin() as conn:
        new_id = (conn.execute(DECISIONS.insert().values(row)).inserted_primary_key or (0,))[0]
        if d.post is not None and d.action in ("hide", "unhide", "approve", "pin", "unpin"):
            _restamp(conn, d.post, curation or Curation())
    log.info("moderation: %s %s by %s", d.action, "/".join(d.post) if d.post else d.value, d.who)
    return int(new_id)


def _restamp(conn: Connection, key: tuple[str, str], curation: Curation) -> None:
    """The post's assignment flags as the curation file and the decisions now say."""
    state = State()
    for r in conn.execute(_decisions().where(DECISIONS.c.platform == key[0],
                                             DECISIONS.c.post_id == key[1])):  # fmt: skip
        state.apply(r)
    post = conn.execute(
        select(POSTS.c.id, POSTS.c.url).where(POSTS.c.platform == key[0], POSTS.c.post_id == key[1])
    ).first()
    if post is None:
        return
    merged = _merge(curation, state, {key: (post.id, post.url)})
    final = merged.apply(key[0], key[1], post.url, _NO_DECISION)
    conn.execute(
        update(ASSIGNMENTS)
        .where(ASSIGNMENTS.c.post_pk == post.id)
        .values(excluded=final.excluded, highlight=final.highlight, tagged_at=utcnow())
    )


def _decisions() -> Any:
    return select(DECISIONS).order_by(DECISIONS.c.id)


def read_state(engine: Engine | Connection) -> State:
    """The decisions in force (an empty State for a database with none)."""
    state = State()
    with storage_errors("could not read the moderation decisions"):
        if isinstance(engine, Connection):
            rows = list(engine.execute(_decisions()))
        else:
            with engine.connect() as conn:
                rows = list(conn.execute(_decisions()))
    for r in rows:
        state.apply(r)
    return state


def _posts(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """(pk, url) of each stored post among `keys`."""
    keys = sorted(keys)
    found: dict[tuple[str, str], Any] = {}
    for i in range(0, len(keys), 200):
        chunk = keys[i : i + 200]
        where = or_(*(and_(POSTS.c.platform == p, POSTS.c.post_id == k) for p, k in chunk))
        for r in conn.execute(select(POSTS.c.id, POSTS.c.platform, POSTS.c.post_id, POSTS.c.url)
                              .where(where)):  # fmt: skip
            found[(r.platform, r.post_id)] = (r.id, r.url)
    return found


def moderated(engine: Engine, curation: Curation) -> Curation:
    """`curation` with the decisions in force folded in (the file wins where they disagree): a
    hidden post is an `exclude` entry, a pinned one a `highlight`, a muted account a mute, a question
    for the chair in `asked`. A curation that already has them is returned as it is."""
    if curation.decisions:
        return curation
    with engine.connect() as conn:
        state = read_state(conn)
        posts = _posts(conn, state.posts) if state.posts else {}
    return _merge(curation, state, posts)


_NO_DECISION: Any = None  # Curation.apply only passes the rules' decision through


def _merge(
    curation: Curation, state: State, posts: dict[tuple[str, str], tuple[int, str | None]]
) -> Curation:
    entries, asked = list(curation.entries), set(curation.asked)
    for key, p in sorted(state.posts.items()):
        if key not in posts:
            continue  # not stored (yet), or forgotten: nothing to apply it to
        pk, url = posts[key]
        filed = {e.action for e in curation.for_post(*key, url)}
        if p.hidden and "highlight" not in filed:
            said = p.said["shown"]
            entries.append(Entry(f"wall: hidden by {said}", "exclude", key[1], key[0]))
        elif p.pinned and "exclude" not in filed and not p.hidden:
            said = p.said["pinned"]
            entries.append(Entry(f"wall: pinned by {said}", "highlight", key[1], key[0]))
        if p.question and not p.hidden and "exclude" not in filed:
            asked.add(pk)
    mutes = dict(curation.mutes)
    for account, said in state.muted.items():
        mutes.setdefault(account, f"muted on the wall by {said}")
    return replace(
        curation, entries=tuple(entries), mutes=mutes, asked=frozenset(asked),
        decisions=state.story_digest(),
    )  # fmt: skip


def disagreements(engine: Engine, curation: Curation) -> list[str]:
    """Each place where a decision in force says otherwise than the curation file, naming the
    post or account, both sides and which wins (the file)."""
    with engine.connect() as conn:
        state = read_state(conn)
        posts = _posts(conn, state.posts) if state.posts else {}
    out: list[str] = []
    fix = "the curation file wins: change the file or undo the decision on /moderate"
    for key, p in sorted(state.posts.items()):
        if key not in posts:
            continue
        entries = curation.for_post(*key, posts[key][1])
        named = {e.action: e.where for e in entries}
        post = f"{key[0]} post {key[1]}"
        clashes = [
            (p.hidden and "highlight" in named, "shown", "hid it", "highlight"),
            (p.shown == "approve" and "exclude" in named, "shown", "approved it", "exclude"),
            (p.pinned is True and "exclude" in named, "pinned", "pinned it", "exclude"),
            (p.pinned is False and "highlight" in named, "pinned", "unpinned it", "highlight"),
            (p.question is True and "exclude" in named, "question", "made it a question",
             "exclude"),
        ]  # fmt: skip
        for clash, what, did, action in clashes:
            if clash:
                out.append(f"{post}: {p.said[what]} {did} on the wall, but {named[action]} "
                           f"says {action}; {fix}")  # fmt: skip
    for account, said in sorted(state.unmuted.items()):
        if account in curation.mutes:
            out.append(f"account {account}: {said} unmuted it on the wall, but the curation "
                       f"file mutes it; {fix}")  # fmt: skip
    return out
