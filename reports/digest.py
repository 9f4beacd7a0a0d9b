"""The database reads behind a story: SQL aggregates per part, one streamed pass, the few posts shown.

Only visible posts are read (not deleted, not excluded by an organiser, not opted out); what is hidden
is only counted, for the data-quality line.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import and_, case, false, func, literal, not_, or_, select
from sqlalchemy import distinct as sql_distinct
from sqlalchemy.engine import Connection, Engine

from aggregator.config import Config
from aggregator.health import source_health
from reports.model import SourceView
from reports.text import clean_text
from storage.models import Assignment, PostAnalysis, PostRow

__all__ = ["PartTotals", "ReportData", "Scan", "posts_by_id", "report_data"]

POSTS = PostRow.__table__  # type: ignore[attr-defined]
ASSIGN = Assignment.__table__  # type: ignore[attr-defined]
ANALYSIS = PostAnalysis.__table__  # type: ignore[attr-defined]
POSITIVE, NEGATIVE = 0.1, -0.1  # TextBlob polarity beyond these makes a post positive or negative
KEEP = 30  # candidates kept per part and kind, enough to fill a list after near-duplicates go


class _Scope:
    """The report's view: visible posts, each labelled with its part of the story."""

    def __init__(self, config: Config) -> None:
        ids = [s.id for s in config.sessions]
        first = config.sessions[0].start if config.sessions else None
        self.joined = POSTS.outerjoin(ASSIGN, ASSIGN.c.post_pk == POSTS.c.id).outerjoin(
            ANALYSIS, ANALYSIS.c.post_pk == POSTS.c.id
        )
        early = POSTS.c.created_at < first if first else false()
        self.part = case(
            (ASSIGN.c.session_id.in_(ids), ASSIGN.c.session_id),
            (early, literal("before")),
            else_=literal("after"),
        ).label("part")
        self.hidden = {
            "deleted": POSTS.c.deleted_at.is_not(None),
            "excluded": ASSIGN.c.excluded.is_(True),
            "opted_out": func.lower(func.ltrim(POSTS.c.author, "@")).in_(config.privacy.opt_out),
        }
        self.visible = not_(or_(*self.hidden.values()))

    def select(self, *columns: Any) -> Any:
        return select(*columns).select_from(self.joined).where(self.visible)


@dataclass
class PartTotals:
    posts: int
    people: int
    positive: int
    negative: int


class Scan:
    """One streamed pass over narrow columns: term, link and hashtag counts, and candidates to show."""

    def __init__(self) -> None:
        self.terms: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.all_terms: Counter[str] = Counter()
        self.links: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.all_links: Counter[str] = Counter()
        self.hashtags: Counter[str] = Counter()
        self.hashtag_forms: dict[str, str] = {}  # '#copro16' -> '#CoPro16', as first written
        self.pinned: defaultdict[str, list[int]] = defaultdict(list)
        self.heaps: defaultdict[tuple[str, str], list[tuple[bool, int, int, int]]] = defaultdict(
            list
        )
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, r: Any) -> None:
        terms = r.terms or ()
        self.terms[r.part].update(terms)
        self.all_terms.update(terms)
        links = {u for u in r.links or () if isinstance(u, str)}
        self.links[r.part].update(links)
        self.all_links.update(links)
        for tag in {t.lstrip("#") for t in r.hashtags or () if isinstance(t, str)}:
            self.hashtags[f"#{tag.casefold()}"] += 1
            self.hashtag_forms.setdefault(f"#{tag.casefold()}", f"#{tag}")
        if r.repost_of:
            return  # counted, but a repost repeats someone else's words: never shown
        if r.pinned:
            self.pinned[r.part].append(r.id)
        # Worth showing ('Agreed!' is not: two content words at least), then most engaged, most
        # substantial, first collected.
        words = sum(1 for t in terms if " " not in t and t[0] != "#")
        rank = (words >= 2, r.engagement or 0, words, -r.id)
        self._keep("best", r.part, rank)
        media = len(r.media or ())
        for kind, n in (
            ("questions", int(bool(r.question))),
            ("actions", int(bool(r.action))),
            ("media", media),
        ):
            if n:
                self.counts[(r.part, kind)] += n
                self._keep(kind, r.part, rank)

    def _keep(self, kind: str, part: str, rank: tuple[bool, int, int, int]) -> None:
        heap = self.heaps[(kind, part)]
        heapq.heappush(heap, rank)
        if len(heap) > KEEP:
            heapq.heappop(heap)

    def ranked(self, kind: str, part: str) -> list[int]:
        return [-rank[-1] for rank in sorted(self.heaps.get((kind, part), []), reverse=True)]

    def wanted(self) -> list[int]:
        ids = {-rank[-1] for heap in self.heaps.values() for rank in heap}
        return sorted(ids.union(*self.pinned.values()))


@dataclass
class ReportData:
    tz: tzinfo
    totals: dict[str, PartTotals]
    minutes: dict[str, dict[datetime, int]]  # UTC minute -> posts
    contributors: dict[str, list[tuple[str, str | None, int]]]
    people: int
    platforms: Counter[str]
    scan: Scan
    sources: list[SourceView]
    hidden: dict[str, int]  # posts not shown, by reason: deleted, excluded, opted_out
    untagged: int  # visible posts not yet matched to a session


def _minute(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", POSTS.c.created_at), "YYYY-MM-DD HH24:MI")
    return func.substr(POSTS.c.created_at, 1, 16)  # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff'


def _counts(
    conn: Connection, scope: _Scope
) -> tuple[dict[str, PartTotals], dict[str, dict[datetime, int]]]:
    positive = func.sum(case((POSTS.c.sentiment_polarity > POSITIVE, 1), else_=0))
    negative = func.sum(case((POSTS.c.sentiment_polarity < NEGATIVE, 1), else_=0))
    stmt = scope.select(
        scope.part, func.count(), func.count(sql_distinct(POSTS.c.author)), positive, negative
    )
    totals = {
        r[0]: PartTotals(*(int(v or 0) for v in r[1:]))
        for r in conn.execute(stmt.group_by(scope.part))
    }
    minute = _minute(conn).label("minute")
    minutes: defaultdict[str, dict[datetime, int]] = defaultdict(dict)
    for part, key, n in conn.execute(
        scope.select(scope.part, minute, func.count()).group_by(scope.part, minute)
    ):
        minutes[part][datetime.strptime(key, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)] = n
    return totals, dict(minutes)


def _contributors(
    conn: Connection, scope: _Scope, n: int
) -> dict[str, list[tuple[str, str | None, int]]]:
    counted = scope.select(scope.part, POSTS.c.author, func.max(POSTS.c.author_name).label("name"),
                           func.count().label("n")).group_by(scope.part, POSTS.c.author).subquery()  # fmt: skip
    order = (counted.c.n.desc(), counted.c.author)
    rank = func.row_number().over(partition_by=counted.c.part, order_by=order).label("rank")
    ranked = select(counted, rank).subquery()
    stmt = select(ranked.c.part, ranked.c.author, ranked.c.name, ranked.c.n).where(
        ranked.c.rank <= n
    )
    out: defaultdict[str, list[tuple[str, str | None, int]]] = defaultdict(list)
    for r in conn.execute(stmt.order_by(ranked.c.part, ranked.c.rank)):
        out[r.part].append((r.author, r.name, r.n))
    return dict(out)


def _scan(conn: Connection, scope: _Scope) -> Scan:
    engagement = (func.coalesce(POSTS.c.likes, 0) + 2 * func.coalesce(POSTS.c.reposts, 0)
                  + func.coalesce(POSTS.c.replies, 0) + 2 * func.coalesce(POSTS.c.quotes, 0))  # fmt: skip
    stmt = scope.select(
        POSTS.c.id, scope.part, engagement.label("engagement"), ASSIGN.c.highlight.label("pinned"),
        POSTS.c.repost_of, ANALYSIS.c.question, ANALYSIS.c.action, ANALYSIS.c.terms,
        POSTS.c.hashtags, POSTS.c.links, POSTS.c.media,
    ).execution_options(yield_per=2000)  # fmt: skip
    scan = Scan()
    for row in conn.execute(stmt):
        scan.add(row)
    return scan


def posts_by_id(conn: Connection, ids: list[int]) -> list[Any]:
    """Whole rows (and whether an organiser pinned them) for the few posts a report shows."""
    stmt = select(POSTS, ASSIGN.c.highlight.label("pinned")).outerjoin(
        ASSIGN, ASSIGN.c.post_pk == POSTS.c.id
    )
    return [
        r
        for i in range(0, len(ids), 400)
        for r in conn.execute(stmt.where(POSTS.c.id.in_(ids[i : i + 400])))
    ]


def _sources(engine: Engine, conn: Connection, config: Config) -> list[SourceView]:
    """Each configured source's health from the run log, with the posts it found; then imports."""
    tz = config.event.timezone
    found = select(POSTS.c.source, func.count()).group_by(POSTS.c.source)
    posts = {r[0]: r[1] for r in conn.execute(found)}
    views = []
    for h in source_health(engine, config):
        if not h.enabled and not posts.get(h.name):
            continue
        failing = h.failures_in_a_row > 0
        views.append(SourceView(
            h.name, posts.get(h.name, 0), "failed" if failing else "ok" if h.last_success else "never",
            h.last_error_at.astimezone(tz) if failing and h.last_error_at else None,
            h.last_success.astimezone(tz) if h.last_success else None,
            h.last_error if failing else None, [clean_text(w) for w in h.warnings],
        ))  # fmt: skip
    known = {v.name for v in views} | {s.name for s in config.sources}
    views += [SourceView(n, c, "imported") for n, c in sorted(posts.items()) if n not in known]
    return views


def _unshown(conn: Connection, scope: _Scope) -> tuple[dict[str, int], int]:
    """Posts not shown, by reason, and visible posts not yet tagged, in one query."""
    sums = [func.sum(case((cond, 1), else_=0)) for cond in scope.hidden.values()]
    waiting = func.sum(case((and_(scope.visible, ASSIGN.c.post_pk.is_(None)), 1), else_=0))
    row = conn.execute(select(*sums, waiting).select_from(scope.joined)).one()
    *hidden, untagged = (int(v or 0) for v in row)
    return dict(zip(scope.hidden, hidden, strict=True)), untagged


def report_data(
    engine: Engine, conn: Connection, config: Config, show: Mapping[str, int]
) -> ReportData:
    """Every aggregate the story needs, in a handful of queries and one streamed pass."""
    scope = _Scope(config)
    totals, minutes = _counts(conn, scope)
    people = conn.execute(scope.select(func.count(sql_distinct(POSTS.c.author)))).scalar_one()
    platforms = Counter(
        {
            r[0]: r[1]
            for r in conn.execute(
                scope.select(POSTS.c.platform, func.count()).group_by(POSTS.c.platform)
            )
        }
    )
    sources = _sources(engine, conn, config)
    contributors = _contributors(conn, scope, show.get("contributors", 6))
    scan = _scan(conn, scope)
    hidden, untagged = _unshown(conn, scope)
    return ReportData(
        tz=config.event.timezone, totals=totals, minutes=minutes, contributors=contributors,
        people=int(people), platforms=platforms, scan=scan, sources=sources, hidden=hidden,
        untagged=untagged,
    )  # fmt: skip
