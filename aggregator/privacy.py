"""People's choices: opt-out at collection and on every read, and `forget` with an audit row."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Text,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from aggregator.pseudonym import PrivacyError, Pseudonymiser
from aggregator.scrubber import Scrubber, account_key, split_account
from connectors.base import Post, Quarantined
from storage.db import StorageError, writer
from storage.models import POST_TABLE, Assignment, Erasure, Sighting
from storage.moderation import ACCOUNT_ACTIONS, ModerationDecision
from storage.queries import utcnow

__all__ = [
    "REMOVED",
    "Erased",
    "Redactor",
    "account_key",
    "check_account",
    "drop_opted_out",
    "forget",
    "opt_out_redactor",
    "redact_quarantined",
]


REMOVED = "[removed]"
POSTS = POST_TABLE
ACCOUNT_KEYS = {"acct", "username", "handle", "screen_name", "did"}


def check_account(value: str) -> str:
    """The account's comparable form; PrivacyError if it cannot be an account."""
    acct = account_key(value)
    if not acct or any(c.isspace() for c in acct):
        raise PrivacyError(
            f"{value!r} is not an account: give it as in the author column, e.g. user@example.org"
        )
    return acct


class Redactor:
    """Takes given accounts (and their display names) out of other people's posts: REMOVED in
    their place; a whole account object in a raw payload becomes {"redacted": true}."""

    def __init__(self, accounts: Iterable[str], names: Iterable[str] = ()) -> None:
        self.accounts = {account_key(a) for a in accounts if a and a.strip()}
        self.locals = {split_account(a)[0] for a in self.accounts}
        self.scrubber = Scrubber(self.resolve)
        for handle in self.accounts | self.locals:
            self.scrubber.add(handle, REMOVED, handle=True)
        for name in names:
            if name and name.strip():
                self.scrubber.add(name, REMOVED)
        self.needles = sorted(self.locals | self.scrubber.first_words())

    def __bool__(self) -> bool:
        return bool(self.accounts)

    def text(self, value: str) -> str:
        """Free text (a post's text, a tag reason) with these accounts and names removed."""
        return self.scrubber.text(value, bare=True) if self else value

    def resolve(self, local: str, host: str | None) -> str | None:
        # '@alice' without a host may be alice@host as written on her own instance: removed too
        key = account_key(f"{local}@{host}" if host else local)
        return REMOVED if key in self.accounts or (not host and key in self.locals) else None

    def is_account(self, value: str) -> bool:
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            return False
        return self.resolve(*split_account(value)) is not None

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return REMOVED if self.is_account(value) else self.scrubber.text(value, bare=True)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            if any(k in ACCOUNT_KEYS and isinstance(v, str) and self.is_account(v)
                   for k, v in value.items()):  # fmt: skip
                return {"redacted": True}
            return {k: self.json(v) for k, v in value.items()}
        return value

    def fields(self, post: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
        """The changed fields of a post (its attributes, or a database row's mapping: text, html,
        url, ids, lists, raw) with the accounts removed."""
        keys = ("text", "html", "url", "reply_to", "repost_of", "quote_of", "mentions", "links",
                "media", "raw")  # fmt: skip
        blob = json.dumps([post.get(k) for k in keys], ensure_ascii=False, default=str).casefold()
        if not self or not any(n in blob for n in self.needles):
            return {}
        new: dict[str, Any] = {
            k: self.scrubber.text(post[k], bare=k == "html")
            for k in keys[:6]
            if isinstance(post.get(k), str)
        }
        new["mentions"] = [m for m in post.get("mentions") or [] if not self.is_account(m)]
        new["links"] = [self.scrubber.text(str(v)) for v in post.get("links") or []]
        new["media"] = self.json(post.get("media") or [])
        new["raw"] = self.json(post.get("raw") or {})
        return {k: v for k, v in new.items() if v != post.get(k) and (v or post.get(k))}


def drop_opted_out(posts: list[Post], redactor: Redactor) -> tuple[list[Post], int]:
    """Posts by the redactor's accounts left out, their handles removed from the rest: (kept, dropped)."""
    if not redactor:
        return posts, 0
    kept = [p for p in posts if account_key(p.author) not in redactor.accounts]
    for post in kept:
        for key, value in redactor.fields(vars(post)).items():
            setattr(post, key, value)
    return kept, len(posts) - len(kept)


def redact_quarantined(items: list[Quarantined], redactor: Redactor) -> list[Quarantined]:
    """Records kept aside for inspection, minus the redactor's accounts: a record that could not
    be read as a post may still be an opted-out person's, so one that names such an account
    anywhere is kept without its content (its place and reason only)."""
    if not redactor:
        return items
    return [
        q if redactor.json(q.raw) == q.raw
        else replace(q, reason=redactor.text(q.reason), raw=None)
        for q in items
    ]  # fmt: skip


@dataclass(frozen=True)
class Erased:
    posts: int
    sightings: int
    assignments: int
    redacted_posts: int
    hashed: bool


def forget(engine: Engine, account: str, key: bytes | None = None) -> Erased:
    """Delete an account's posts everywhere, remove its handle and name from other posts, and
    record the erasure (counts, and a keyed hash of the account only when `key` is given)."""
    acct = check_account(account)
    mine = func.lower(func.ltrim(POSTS.c.author, "@")) == acct
    try:
        with writer(engine).begin() as conn:
            return _forget(conn, acct, mine, key)
    except OperationalError as exc:
        raise StorageError(f"could not forget {acct}: {exc.orig}") from None


def _identities(rows: Sequence[Any]) -> tuple[set[str], set[str]]:
    """Other forms of the person from their own posts: display names, and (Bluesky) the DID
    that other posts' reply ids and mentions use, from the author object in each raw payload."""
    ids: set[str] = set()
    names = {r.author_name for r in rows if r.author_name}
    for r in rows:
        raw = r.raw if isinstance(r.raw, dict) else {}
        for who in (raw.get(k) for k in ("account", "author", "user")):
            if isinstance(who, dict):
                ids.update(v for k, v in who.items() if k == "did" and isinstance(v, str))
                names.update(v for k, v in who.items()
                             if k in ("display_name", "displayName", "name") and isinstance(v, str) and v)  # fmt: skip
    return ids, names


def _forget(conn: Connection, acct: str, mine: Any, key: bytes | None) -> Erased:
    rows = conn.execute(
        select(
            POSTS.c.id, POSTS.c.platform, POSTS.c.post_id, POSTS.c.author_name, POSTS.c.raw
        ).where(mine)
    ).all()
    ids, names = _identities(rows)
    _forget_decisions(conn, acct, [(r.platform, r.post_id) for r in rows])
    sightings, assignments, posts = _delete(conn, [r.id for r in rows])
    redacted = _redact_stored(conn, Redactor([acct, *ids], names))
    digest = Pseudonymiser(key).account(acct) if key else None
    conn.execute(
        insert(Erasure.__table__).values(  # type: ignore[attr-defined]
            erased_at=utcnow(), posts=posts, sightings=sightings, assignments=assignments,
            redacted_posts=redacted, account_hash=digest,
        )
    )  # fmt: skip
    return Erased(posts, sightings, assignments, redacted, digest is not None)


def _forget_decisions(conn: Connection, acct: str, posts: Sequence[tuple[str, str]]) -> None:
    """The moderators' decisions about the account (mute, allow, block) and about its posts go
    with them: the wall's record must not keep what the erasure removes."""
    table = ModerationDecision.__table__  # type: ignore[attr-defined]
    conn.execute(delete(table).where(table.c.action.in_(ACCOUNT_ACTIONS), table.c.value == acct))
    for i in range(0, len(posts), 400):
        keys = posts[i : i + 400]
        conn.execute(delete(table).where(tuple_(table.c.platform, table.c.post_id).in_(keys)))


def opt_out_redactor(conn: Connection, accounts: Iterable[str]) -> Redactor:
    """A Redactor for opted-out accounts that also knows the display names their stored posts
    carry (posts stored before they opted out), so reports and exports can remove both."""
    keys = [account_key(a) for a in accounts if a.strip()]
    if not keys:
        return Redactor(())
    mine = func.lower(func.ltrim(POSTS.c.author, "@")).in_(keys)
    rows = conn.execute(select(POSTS.c.author_name, POSTS.c.raw).where(mine)).all()
    ids, names = _identities(rows)
    return Redactor([*keys, *ids], names)


def _delete(conn: Connection, ids: list[int]) -> tuple[int, int, int]:
    """Sightings, assignments, then the posts (other per-post tables follow by ON DELETE CASCADE)."""
    counts = [0, 0, 0]
    for i in range(0, len(ids), 400):
        chunk = ids[i : i + 400]
        for n, (table, column) in enumerate(
            [(Sighting.__table__, "post_pk"), (Assignment.__table__, "post_pk"), (POSTS, "id")]  # type: ignore[attr-defined]
        ):
            counts[n] += conn.execute(delete(table).where(table.c[column].in_(chunk))).rowcount
    return counts[0], counts[1], counts[2]


def _redact_stored(conn: Connection, redactor: Redactor) -> int:
    """Rewrite every stored post that mentions the redactor's accounts or names; returns how many."""
    columns: list[ColumnElement[Any]] = [
        POSTS.c[k] for k in ("text", "html", "url", "reply_to", "repost_of", "quote_of")
    ]
    columns += [cast(POSTS.c[k], Text) for k in ("mentions", "links", "media", "raw")]
    near = [c.icontains(n, autoescape=True) for c in columns for n in redactor.needles]
    ids = conn.execute(select(POSTS.c.id).where(or_(*near))).scalars().all() if near else []
    keys = ("id", "text", "html", "url", "reply_to", "repost_of", "quote_of", "mentions", "links",
            "media", "raw")  # fmt: skip
    changed: list[int] = []
    for i in range(0, len(ids), 400):
        stmt = select(*[POSTS.c[k] for k in keys]).where(POSTS.c.id.in_(ids[i : i + 400]))
        for row in conn.execute(stmt).all():
            values = redactor.fields(row._mapping)
            if values:
                conn.execute(
                    update(POSTS).where(POSTS.c.id == row.id).values(**values, updated_at=utcnow())
                )
                changed.append(row.id)
    _redact_derived(conn, redactor, changed)
    return len(changed)


def _redact_derived(conn: Connection, redactor: Redactor, changed: list[int]) -> None:
    """Tag reasons quote reply ids and cues: redacted too. Other per-post tables hold what was
    computed from the old text: dropped for the changed posts, to be computed again."""
    reasons = Assignment.__table__  # type: ignore[attr-defined]
    near = [reasons.c.reason.icontains(n, autoescape=True) for n in redactor.needles]
    for row in conn.execute(select(reasons.c.post_pk, reasons.c.reason).where(or_(*near))).all():
        reason = redactor.scrubber.text(row.reason, bare=True)
        if reason != row.reason:
            conn.execute(
                update(reasons).where(reasons.c.post_pk == row.post_pk).values(reason=reason)
            )
    derived = [t for t in SQLModel.metadata.sorted_tables
               if "post_pk" in t.c and t.name not in ("sighting", "assignment")]  # fmt: skip
    for i in range(0, len(changed), 400):
        for table in derived:
            conn.execute(delete(table).where(table.c.post_pk.in_(changed[i : i + 400])))
