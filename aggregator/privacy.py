"""People's choices: opt-out at collection, `forget` with an audit row, keyed pseudonyms for exports."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Text, cast, delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from connectors.base import Post
from storage.db import StorageError, writer
from storage.models import Assignment, Erasure, PostRow, Sighting
from storage.queries import utcnow

__all__ = [
    "PSEUDONYM_KEY_ENV",
    "REMOVED",
    "Erased",
    "PrivacyError",
    "Pseudonymiser",
    "Redactor",
    "account_key",
    "check_account",
    "drop_opted_out",
    "forget",
    "opt_out_redactor",
    "pseudonym_key",
]

PSEUDONYM_KEY_ENV = "AGGREGATOR_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 16
REMOVED = "[removed]"
POSTS = PostRow.__table__  # type: ignore[attr-defined]
TOKEN = re.compile(r"\w+")
NAME = r"\w(?:[\w.\-]*\w)?"
HOST = r"[\w\-]+(?:\.[\w\-]+)+"
# One pass over text: a URL (accounts in its path), an @mention (@user, @user@host), a Bluesky DID.
SPECIAL = re.compile(
    rf"(?P<url>(?:https?://|(?<![\w.@/])(?=(?:www\.|mobile\.)?(?:x|twitter)\.com/|bsky\.app/))"
    rf"[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}}])"
    rf"|(?<![\w@])[@＠](?P<mention>{NAME}(?:@{HOST})?)"
    r"|(?P<did>did:(?:plc|web):[\w.:%\-]*\w)"
)
URL_PARTS = re.compile(r"(?P<base>(?:https?://)?(?P<host>[^/?#]+))(?P<rest>.*)", re.DOTALL)
# /@user or /@user@host (Mastodon profiles and posts), /users/user (ActivityPub ids), DIDs.
PATH_ACCOUNT = re.compile(
    rf"(?<=/)@(?P<at>{NAME})(?:@(?P<host>{HOST}))?|(?<=/users/)(?P<user>{NAME})"
    r"|(?P<did>did:(?:plc|web):[\w.:%\-]*\w)"
)
X_HOSTS = {"twitter.com", "www.twitter.com", "mobile.twitter.com", "x.com", "www.x.com"}
X_RESERVED = {"i", "intent", "hashtag", "search", "home", "share", "explore", "settings", "status"}
X_PATH = re.compile(r"^/(?P<name>\w{1,50})(?!\w)")
BSKY_PATH = re.compile(r"^/profile/(?P<name>[\w.:%\-]*\w)")
NAME_EXTRAS = re.compile(r"\([^)]*\)|\[[^\]]*\]|\s[|,•·–—-]\s.*$|[|,].*$")  # "(she/her)", "| NHS"
ACCOUNT_KEYS = {"acct", "username", "handle", "screen_name", "did"}

Resolve = Callable[[str, str | None], str | None]


class PrivacyError(Exception):
    """A privacy step cannot run; the message names what to fix."""


def account_key(value: str) -> str:
    """The comparable form of an account: no surrounding space or leading @, lower case."""
    return value.strip().lstrip("@＠").lower()


def check_account(value: str) -> str:
    """The account's comparable form; PrivacyError if it cannot be an account."""
    acct = account_key(value)
    if not acct or any(c.isspace() for c in acct):
        raise PrivacyError(
            f"{value!r} is not an account: give it as in the author column, e.g. user@example.org"
        )
    return acct


def split_account(value: str) -> tuple[str, str | None]:
    local, _, host = account_key(value).partition("@")
    return local, host or None


def pseudonym_key(env: Mapping[str, str], required: bool = True) -> bytes | None:
    """The HMAC key from AGGREGATOR_PSEUDONYM_KEY; PrivacyError when it is needed and missing or weak."""
    value = env.get(PSEUDONYM_KEY_ENV, "")
    if not value.strip():
        if not required:
            return None
        raise PrivacyError(
            f"--pseudonymise needs a secret key: set the environment variable {PSEUDONYM_KEY_ENV} "
            "(e.g. to the output of: python -c 'import secrets; print(secrets.token_hex(32))') "
            "and keep it to get the same pseudonyms next time"
        )
    if len(value) < MIN_KEY_LENGTH:
        raise PrivacyError(
            f"{PSEUDONYM_KEY_ENV} is too short ({len(value)} characters): "
            f"use at least {MIN_KEY_LENGTH} random characters"
        )
    return value.encode()


def _name_variants(name: str) -> list[str]:
    """A display name as written, and without decorations such as '(she/her)' or '| NHS England'."""
    core = NAME_EXTRAS.sub("", name).strip()
    return [name, core] if core and core != name else [name]


class Scrubber:
    """Replaces accounts found in URLs, @mentions and DIDs (through `resolve`), then known
    names and handles written out in free text (matched word by word, ignoring case)."""

    def __init__(self, resolve: Resolve) -> None:
        self.resolve = resolve
        self.phrases: dict[tuple[str, ...], str] = {}
        self.longest: dict[str, int] = {}  # first word -> most words of a phrase starting with it
        self.words: dict[str, str] = {}  # one-word names, matched with their case ('Helen')
        self.handles: dict[str, str] = {}  # one-word handles: bare words only where `bare`
        self._firsts: set[str] | None = None

    def add(self, text: str, replacement: str, handle: bool = False) -> None:
        self._firsts = None
        for variant in [text] if handle else _name_variants(text):
            found = TOKEN.findall(variant)
            tokens = tuple(t.casefold() for t in found)
            if len(tokens) > 1:
                self.phrases[tokens] = replacement
                self.longest[tokens[0]] = max(self.longest.get(tokens[0], 0), len(tokens))
            elif tokens and handle:
                self.handles[tokens[0]] = replacement
            elif tokens and len(tokens[0]) >= 3:  # 'Al' would eat every 'al' in the text
                self.words[found[0]] = replacement

    def first_words(self) -> set[str]:
        if self._firsts is None:
            self._firsts = {*self.longest, *(w.casefold() for w in self.words), *self.handles}
        return self._firsts

    def text(self, value: str, bare: bool = False) -> str:
        """`value` with every account, name and handle this scrubber knows replaced."""
        return self._phrases(SPECIAL.sub(self._special, value), bare)

    def _swap(self, original: str, local: str, host: str | None, prefix: str = "") -> str:
        replacement = self.resolve(local, host)
        return prefix + replacement if replacement else original

    def _special(self, m: re.Match[str]) -> str:
        if m["url"]:
            return self._url(m["url"])
        if m["mention"]:
            return self._swap(m.group(), *split_account(m["mention"]), prefix="@")
        return self._swap(m.group(), m["did"], None)

    def _url(self, url: str) -> str:
        m = URL_PARTS.match(url)
        if not m:
            return url
        host, rest = m["host"].lower().rpartition("@")[2].split(":")[0], m["rest"]
        if host in X_HOSTS:
            rest = X_PATH.sub(
                lambda p: (
                    p.group()
                    if p["name"].lower() in X_RESERVED
                    else self._swap(p.group(), p["name"], None, "/")
                ),
                rest,
            )
        elif host == "bsky.app":
            rest = BSKY_PATH.sub(
                lambda p: self._swap(p.group(), p["name"], None, "/profile/"), rest
            )

        def path(p: re.Match[str]) -> str:
            if p["at"]:
                return self._swap(p.group(), p["at"], p["host"] or host, "@")
            return self._swap(p.group(), p["user"] or p["did"], host if p["user"] else None)

        return m["base"] + PATH_ACCOUNT.sub(path, rest)

    def _phrases(self, value: str, bare: bool) -> str:
        if not (self.phrases or self.words or (bare and self.handles)):
            return value
        tokens = list(TOKEN.finditer(value))
        firsts = self.first_words()
        out, last, i = [], 0, 0
        while i < len(tokens):
            if tokens[i].group().casefold() not in firsts:  # most words start nothing we know
                i += 1
                continue
            n, replacement = self._match(tokens, i, bare)
            if replacement is None:
                i += 1
                continue
            out += [value[last : tokens[i].start()], replacement]
            last, i = tokens[i + n - 1].end(), i + n
        return "".join([*out, value[last:]])

    def _match(self, tokens: list[re.Match[str]], i: int, bare: bool) -> tuple[int, str | None]:
        word = tokens[i].group()
        folded = word.casefold()
        for n in range(min(self.longest.get(folded, 0), len(tokens) - i), 1, -1):
            found = self.phrases.get(tuple(t.group().casefold() for t in tokens[i : i + n]))
            if found:
                return n, found
        found = self.words.get(word)
        if not found and bare and self._alone(tokens[i]):
            found = self.handles.get(folded)
        return (1, found) if found else (0, None)

    @staticmethod
    def _alone(token: re.Match[str]) -> bool:
        """A bare handle stands alone ('erin', @<span>erin</span>), not as a word of a name."""
        text, start, end = token.string, token.start(), token.end()
        return (start == 0 or not text[start - 1].isspace()) and (
            end == len(text) or not text[end].isspace()
        )


class Pseudonymiser:
    """Keyed pseudonyms, stable for as long as the key is kept: `user_` + 12 hex digits of
    HMAC-SHA256 for an account, `name_` + 12 for a display name."""

    def __init__(self, key: bytes, accounts: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        self.key = key
        self._memo: dict[str, str] = {}
        self.known = {account_key(a) for a in accounts if a and a.strip()}
        by_local: dict[str, set[str]] = {}
        for acct in self.known:
            by_local.setdefault(split_account(acct)[0], set()).add(acct)
        # '@alice' in a post on alice's own instance is alice@that.instance when only one alice is known
        self.unique_local = {k: v.pop() for k, v in by_local.items() if len(v) == 1}
        self.context: dict[str, str] = {}  # local part -> account, for the post being scrubbed
        self.scrubber = Scrubber(self.resolve)
        for handle, acct in [*self.unique_local.items(), *((a, a) for a in self.known)]:
            self.scrubber.add(handle, self.account(acct), handle=True)
        for name in names:
            if name and name.strip():
                self.scrubber.add(name, self.name(name))

    def _digest(self, kind: str, value: str) -> str:
        memo = f"{kind}:{value}"
        if memo not in self._memo:  # the same people recur on every page
            self._memo[memo] = hmac.new(self.key, memo.encode(), hashlib.sha256).hexdigest()[:12]
        return self._memo[memo]

    def account(self, value: str) -> str:
        return "user_" + self._digest("account", account_key(value))

    def name(self, value: str) -> str:
        return "name_" + self._digest("name", " ".join(value.casefold().split()))

    def resolve(self, local: str, host: str | None) -> str:
        acct = account_key(f"{local}@{host}" if host else local)
        if not host:
            acct = self.context.get(acct) or (
                acct if acct in self.known else self.unique_local.get(acct, acct)
            )
        return self.account(acct)

    def mention(self, value: str) -> str:
        return self.resolve(*split_account(value))

    def text(self, value: str, bare: bool = False, mentions: Iterable[str] = ()) -> str:
        """`value` with accounts and names replaced; `mentions` (the post's own) say which
        account a bare '@alice' in it means."""
        self.context = {split_account(m)[0]: account_key(m) for m in mentions}
        try:
            return self.scrubber.text(value, bare)
        finally:
            self.context = {}


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

    def fields(self, post: Mapping[str, Any]) -> dict[str, Any]:
        """The changed fields of a post (text, html, url, ids, lists, raw) with the accounts removed."""
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


def _identities(rows: list[Any]) -> tuple[set[str], set[str]]:
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
    rows = conn.execute(select(POSTS.c.id, POSTS.c.author_name, POSTS.c.raw).where(mine)).all()
    ids, names = _identities(rows)
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
    columns = [POSTS.c[k] for k in ("text", "html", "url", "reply_to", "repost_of", "quote_of")]
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
