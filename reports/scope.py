"""The report's view of the database: the visible posts (not deleted, not excluded by an organiser,
not opted out, not muted, not without a time), each labelled with its part of the story, and how
the report reads a JSON list column (as its text, decoded only when it holds something).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Text, case, cast, false, func, literal, not_, or_, select

from aggregator.scrubber import account_key
from aggregator.settings import Config
from connectors.undated import UNDATED
from storage.models import POST_TABLE, Assignment, PostAnalysis

__all__ = ["ANALYSIS", "ASSIGN", "EMPTY", "POSTS", "Accounts", "Scope", "as_text", "decoded"]

POSTS = POST_TABLE
ASSIGN = Assignment.__table__  # type: ignore[attr-defined]
ANALYSIS = PostAnalysis.__table__  # type: ignore[attr-defined]
EMPTY = (None, "", "[]", "null")  # an `as_text` value holding nothing


class Accounts(dict[str, str]):
    """account_key, once per account: a stream has far fewer accounts than posts."""

    def __missing__(self, author: str) -> str:
        self[author] = key = account_key(author)
        return key


def as_text(column: Any, name: str | None = None) -> Any:
    """A JSON column as its text on every database (PostgreSQL's driver would decode it)."""
    return cast(column, Text).label(name or column.name)


def decoded(value: str | None) -> list[Any]:
    """An `as_text` value as a list; [] for anything else."""
    if value in EMPTY:
        return []
    found = json.loads(value)
    return found if isinstance(found, list) else []


class Scope:
    """The report's view: visible posts, each labelled with its part of the story."""

    def __init__(self, config: Config, muted: Iterable[str]) -> None:
        ids = [s.id for s in config.sessions]
        first = config.sessions[0].start if config.sessions else None
        self.tagged = POSTS.outerjoin(ASSIGN, ASSIGN.c.post_pk == POSTS.c.id)
        self.joined = self.tagged.outerjoin(ANALYSIS, ANALYSIS.c.post_pk == POSTS.c.id)
        early = POSTS.c.created_at < first if first else false()
        self.part = case(
            (ASSIGN.c.session_id.in_(ids), ASSIGN.c.session_id),
            (early, literal("before")),
            else_=literal("after"),
        ).label("part")
        self.account = func.lower(func.ltrim(POSTS.c.author, "@"))
        self.hidden = {
            "deleted": POSTS.c.deleted_at.is_not(None),
            "excluded": ASSIGN.c.excluded.is_(True),
            "opted_out": self._among(config.privacy.opt_out),
            "muted": self._among(sorted(muted)),
            # no readable time (connectors.undated): in no part of the story, no chart, no list
            "undated": POSTS.c.created_at == UNDATED,
        }
        self.visible = not_(or_(*self.hidden.values()))
        # a repost: of a post its source names, or written out ("RT @name: …")
        self.reposted = or_(func.coalesce(POSTS.c.repost_of, "") != "", ANALYSIS.c.repost.is_(True))
        self.links = or_(
            func.coalesce(cast(POSTS.c.links, Text), "[]") != "[]",
            func.coalesce(cast(ANALYSIS.c.links, Text), "null") != "null",
        )

    def _among(self, accounts: Iterable[str]) -> Any:
        """Posts of these accounts; none, with no test of each post, when there are none."""
        accounts = list(accounts)
        return self.account.in_(accounts) if accounts else false()

    def select(self, *columns: Any, analysed: bool = True) -> Any:
        """Visible posts' `columns`; `analysed=False` when none of them is the analysis's."""
        joined = self.joined if analysed else self.tagged
        return select(*columns).select_from(joined).where(self.visible)
