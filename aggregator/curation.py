"""Organisers' corrections (curation.toml): assign, exclude or highlight posts; mute an account or
give it a role for the whole story; a note per session.

The file format is documented in docs/curation.md. Applying a correction is pure; only loading reads a file.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aggregator.scrubber import account_key
from aggregator.settings import Config, ConfigError
from aggregator.tagging import Decision

__all__ = [
    "ACTIONS",
    "GENERAL",
    "ROLES",
    "Curated",
    "Curation",
    "CurationError",
    "Entry",
    "load_curation",
]

ACTIONS = ("assign", "exclude", "highlight")
GENERAL = "general"  # `session = "general"` puts a post outside every session
KEYS = {"id", "platform", "url", "note", "session"}
ROLES = ("organiser", "speaker", "bot")  # [[role]]: how the story treats an account's posts
ACCOUNT_TABLES = {"mute": {"account", "note"}, "role": {"account", "role", "note"}}


class CurationError(ConfigError):
    """The curation file is unusable; `problems` lists every bad entry as 'assign[3].session: …'."""


@dataclass(frozen=True)
class Entry:
    """One correction: which post (id [+ platform], or url) and what to do with it."""

    where: str  # e.g. "assign[3]", as organisers find it in the file
    action: str  # assign | exclude | highlight
    post_id: str | None = None
    platform: str | None = None
    url: str | None = None
    session: str | None = None  # assign only; None = general
    note: str = ""

    def matches(self, platform: str, post_id: str, url: str | None) -> bool:
        if self.url is not None:
            return url is not None and _url_key(url) == _url_key(self.url)
        return post_id == self.post_id and self.platform in (None, platform)

    def describe(self) -> str:
        what = {"assign": f"assign to {self.session or GENERAL}", "exclude": "exclude"}
        text = f"{self.where}: {what.get(self.action, 'highlight')}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Curated:
    """A decision after the organisers' corrections, with the flags stored beside it."""

    decision: Decision
    method: str = "auto"  # curated when an organiser chose the session
    excluded: bool = False
    highlight: bool = False
    entries: tuple[Entry, ...] = ()


@dataclass(frozen=True)
class Curation:
    """Every correction in the file, plus `notes`: session id -> the organisers' paragraph."""

    path: Path | None = None
    entries: tuple[Entry, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)
    # Accounts, as `account_key` writes them: left out of the whole story (the note says why) ...
    mutes: dict[str, str] = field(default_factory=dict)
    # ... and each one's role: organiser and speaker posts are quoted, not counted as the
    # audience; a bot's posts are never shown (docs/curation.md).
    roles: dict[str, str] = field(default_factory=dict)
    # Moderators' decisions from the live wall, folded in by storage.moderation.moderated: the
    # posts (by row id) marked as a question for the chair, and a digest of what the story reads
    # of the decisions ("" when none are folded in).
    asked: frozenset[int] = frozenset()
    decisions: str = ""

    def for_post(self, platform: str, post_id: str, url: str | None) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.matches(platform, post_id, url))

    def apply(self, platform: str, post_id: str, url: str | None, decision: Decision) -> Curated:
        """The rules' decision, overridden where an organiser said otherwise."""
        found = self.for_post(platform, post_id, url)
        if not found:
            return Curated(decision)
        assigned = next((e for e in found if e.action == "assign"), None)
        method = "auto"
        if assigned is not None:
            said = f": {assigned.note}" if assigned.note else ""
            rules = decision.session_id or GENERAL
            reason = f"organisers' correction ({assigned.where}{said}); the rules said {rules}"
            decision, method = Decision(assigned.session, 1.0, reason), "curated"
        actions = {e.action for e in found}
        return Curated(decision, method, "exclude" in actions, "highlight" in actions, found)

    def fingerprint(self) -> str:
        """Changes when any correction changes (session notes, mutes and roles excluded: they
        change what the story shows, not where posts belong), or any moderator's decision the story
        reads (so the story is written again)."""
        data: list[Any] = [[e.where, e.post_id, e.platform, e.url, e.session, e.note]
                           for e in self.entries]  # fmt: skip
        if self.decisions:
            data.append(self.decisions)
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]

    def muted(self, author: str) -> bool:
        return account_key(author) in self.mutes

    def role(self, author: str) -> str | None:
        return self.roles.get(account_key(author))

    def wanted_ids(self) -> tuple[set[str], set[str]]:
        """The post ids and urls the corrections name, to find which match no stored post."""
        ids = {e.post_id for e in self.entries if e.post_id is not None}
        return ids, {e.url for e in self.entries if e.url is not None}


def _url_key(url: str) -> str:
    return url.strip().rstrip("/")


def load_curation(config: Config) -> Curation:
    """Read `[tagging] curation`; no file configured -> no corrections. Raises CurationError."""
    path = config.curation
    if path is None:
        return Curation()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise CurationError(path, [f"cannot read it: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise CurationError(path, [f"not valid TOML: {exc}"]) from None
    return _Reader(path, config).read(data)


class _Reader:
    def __init__(self, path: Path, config: Config) -> None:
        self.path = path
        self.sessions = [s.id for s in config.sessions]
        self.problems: list[str] = []
        self.seen: dict[tuple[str, str, str], str] = {}

    def bad(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def read(self, data: dict[str, Any]) -> Curation:
        for key in data:
            if key not in (*ACTIONS, *ACCOUNT_TABLES, "notes"):
                self.bad(key, "unknown table (use [[assign]], [[exclude]], [[highlight]], "
                              "[[mute]], [[role]], [notes])")  # fmt: skip
        entries: list[Entry] = []
        for action in ACTIONS:
            tables = data.get(action, [])
            if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
                self.bad(action, f"must be [[{action}]] tables")
                continue
            for i, tbl in enumerate(tables):
                entry = self.entry(f"{action}[{i}]", action, tbl)
                if entry is not None:
                    entries.append(entry)
        notes = self.notes(data.get("notes", {}))
        mutes = {a: t.get("note", "") for a, t in self.accounts(data, "mute")}
        roles = {a: t.get("role", "") for a, t in self.accounts(data, "role")}
        if self.problems:
            raise CurationError(self.path, self.problems)
        return Curation(self.path, tuple(entries), notes, mutes, roles)

    def accounts(self, data: dict[str, Any], table: str) -> list[tuple[str, dict[str, Any]]]:
        """`[[mute]]` or `[[role]]` tables: (account key, table) for each good one."""
        tables = data.get(table, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            self.bad(table, f"must be [[{table}]] tables")
            return []
        out: list[tuple[str, dict[str, Any]]] = []
        seen: dict[str, str] = {}
        for i, tbl in enumerate(tables):
            where = f"{table}[{i}]"
            for key in tbl:
                if key not in ACCOUNT_TABLES[table]:
                    allowed = ", ".join(sorted(ACCOUNT_TABLES[table]))
                    self.bad(f"{where}.{key}", f"unknown key (use {allowed})")
            account = self.text(tbl, where, "account")
            key = account_key(account) if account else ""
            if not key or any(c.isspace() for c in key):
                self.bad(
                    f"{where}.account", 'name the account as in exports, e.g. "user@example.org"'
                )
                continue
            if table == "role" and tbl.get("role") not in ROLES:
                self.bad(
                    f"{where}.role", f"must be one of {', '.join(ROLES)} (got {tbl.get('role')!r})"
                )
                continue
            if key in seen:
                self.bad(where, f"the same account is already in {seen[key]}")
                continue
            if isinstance(tbl.get("note", ""), str):
                seen[key] = where
                out.append((key, tbl))
            else:
                self.bad(f"{where}.note", "must be a string")
        return out

    def text(self, tbl: dict[str, Any], where: str, key: str) -> str | None:
        value = tbl.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and key == "id":
            return str(value)  # a long id written without quotes is still that id
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.bad(f"{where}.{key}", "must be a non-empty string")
            return None
        return value.strip() if value else None

    def entry(self, where: str, action: str, tbl: dict[str, Any]) -> Entry | None:
        allowed = KEYS if action == "assign" else KEYS - {"session"}
        for key in tbl:
            if key not in allowed:
                self.bad(f"{where}.{key}", f"unknown key (use {', '.join(sorted(allowed))})")
        post_id, url = self.text(tbl, where, "id"), self.text(tbl, where, "url")
        platform, note = self.text(tbl, where, "platform"), self.text(tbl, where, "note") or ""
        if (post_id is None) == (url is None):
            self.bad(where, 'name the post by id = "…" (and optionally platform) or by url = "…"')
            return None
        if url is not None and platform is not None:
            self.bad(f"{where}.platform", "only goes with id: a url already names the post")
        session = self.session(tbl, where) if action == "assign" else None
        post = (platform or "", post_id or _url_key(url or ""))
        if (action, *post) in self.seen:
            self.bad(where, f"the same post is already in {self.seen[(action, *post)]}")
        clash = {"exclude": "highlight", "highlight": "exclude"}.get(action, "")
        if (clash, *post) in self.seen:
            self.bad(where, f"cannot {action} the post {self.seen[(clash, *post)]} would {clash}")
        self.seen[(action, *post)] = where
        return Entry(where, action, post_id, platform, url, session, note)

    def session(self, tbl: dict[str, Any], where: str) -> str | None:
        value = tbl.get("session")
        if value == GENERAL and GENERAL not in self.sessions:
            return None
        if value not in self.sessions:
            known = ", ".join([*self.sessions, GENERAL])
            problem = "is required" if value is None else f"unknown session {value!r}"
            self.bad(f"{where}.session", f"{problem} (use one of: {known})")
        return value if isinstance(value, str) else None

    def notes(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            self.bad("notes", 'must be a table: [notes] then session-3 = "…"')
            return {}
        out: dict[str, str] = {}
        for sid, text in value.items():
            if sid not in self.sessions:
                self.bad(
                    f"notes.{sid}",
                    f"unknown session {sid!r} (use one of: {', '.join(self.sessions)})",
                )
            elif not isinstance(text, str) or not text.strip():
                self.bad(f"notes.{sid}", "must be a non-empty string")
            else:
                out[sid] = text.strip()
        return out
