"""The database reads behind a story: SQL aggregates per part, two streamed passes, the few posts shown.

Only visible posts are read (not deleted, not excluded by an organiser, not opted out, not muted);
what is hidden is only counted, for the data-quality line. The first pass (`_context`) reads each
post's account, copy key, links and spam flag, oldest first, and decides over the whole event which
posts are copies and which are spam (docs/report.md, "Editorial rules"); the second (`Scan`) counts
terms, links and hashtags and keeps the candidates each list may show, by the editorial rules.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import Text, and_, case, false, func, literal, not_, or_, select, type_coerce
from sqlalchemy import distinct as sql_distinct
from sqlalchemy.engine import Connection, Engine

from aggregator.clock import EventClock
from aggregator.scrubber import account_key
from aggregator.settings import Config
from connectors.undated import UNDATED
from reports.model import SourceView
from reports.text import MAX_ANALYSED, clean_text
from storage.models import POST_TABLE, Assignment, PostAnalysis
from storage.runlog import source_health

__all__ = [
    "KEEP",
    "PER_ACCOUNT",
    "Context",
    "PartTotals",
    "ReportData",
    "Scan",
    "Voices",
    "posts_by_id",
    "report_data",
    "texts_by_id",
]

POSTS = POST_TABLE
ASSIGN = Assignment.__table__  # type: ignore[attr-defined]
ANALYSIS = PostAnalysis.__table__  # type: ignore[attr-defined]
POSITIVE, NEGATIVE = 0.1, -0.1  # TextBlob polarity beyond these makes a post positive or negative
KEEP = 30  # candidates kept per part and kind, enough to fill a list after near-duplicates go
PER_ACCOUNT = 2  # at most this many of one account's posts in one list of a part
SAMPLE = 200  # posts per part that key points are drawn from (docs/report.md, "Key points")
REPEATS = 3  # the same text or link from one account this many times is spam (reports/editorial)
# The lists a part shows and what each holds (a post may be a candidate for several).
SHOWN_KINDS = ("best", "questions", "actions")


@dataclass(frozen=True)
class Voices:
    """Who is who, by account key: organisers and speakers are recognised (not the audience),
    bots are spam, and muted accounts are left out of the whole story."""

    organisers: frozenset[str] = frozenset()
    speakers: frozenset[str] = frozenset()
    bots: frozenset[str] = frozenset()
    muted: frozenset[str] = frozenset()

    @classmethod
    def of(cls, config: Config, roles: Mapping[str, str], mutes: Iterable[str]) -> Voices:
        """From `[event] organiser_accounts`, each session's `speaker_accounts`, and the curation
        file's roles and mutes."""
        said = lambda role: {a for a, r in roles.items() if r == role}  # noqa: E731
        speakers = {a for s in config.sessions for a in s.speaker_accounts}
        return cls(
            organisers=frozenset({*config.event.organiser_accounts, *said("organiser")}),
            speakers=frozenset({*speakers, *said("speaker")} - said("organiser")),
            bots=frozenset(said("bot")),
            muted=frozenset(account_key(a) for a in mutes),
        )

    def role(self, author: str) -> str | None:
        """organiser, speaker or bot for a recognised account; None for the audience."""
        key = account_key(author)
        for role, accounts in (("organiser", self.organisers), ("speaker", self.speakers),
                               ("bot", self.bots)):  # fmt: skip
            if key in accounts:
                return role
        return None

    @property
    def not_audience(self) -> frozenset[str]:
        return self.organisers | self.speakers | self.bots


class _Accounts(dict[str, str]):
    """account_key, once per account: a stream has far fewer accounts than posts."""

    def __missing__(self, author: str) -> str:
        self[author] = key = account_key(author)
        return key


def _raw(column: Any, name: str | None = None) -> Any:
    """A JSON list column as stored, decoded by `_list` only when it holds something: most
    posts have no links or media, and decoding every empty list costs a second in 100,000."""
    return type_coerce(column, Text).label(name or column.name)


def _has(value: Any) -> bool:
    """Whether a `_raw` value holds anything (JSON's null and [] do not)."""
    return bool(value) and value not in ("[]", "null")


def _list(value: Any) -> list[Any]:
    """A `_raw` value as a list (PostgreSQL's driver decodes JSON itself; SQLite gives text)."""
    if not _has(value):
        return []
    decoded = json.loads(value) if isinstance(value, str) else value
    return decoded if isinstance(decoded, list) else []


class _Scope:
    """The report's view: visible posts, each labelled with its part of the story."""

    def __init__(self, config: Config, voices: Voices) -> None:
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
        self.account = func.lower(func.ltrim(POSTS.c.author, "@"))
        self.hidden = {
            "deleted": POSTS.c.deleted_at.is_not(None),
            "excluded": ASSIGN.c.excluded.is_(True),
            "opted_out": self.account.in_(config.privacy.opt_out),
            "muted": self.account.in_(sorted(voices.muted)),
            # no readable time (connectors.undated): in no part of the story, no chart, no list
            "undated": POSTS.c.created_at == UNDATED,
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


@dataclass
class Context:
    """The editorial decisions over the whole event (reports/editorial.py's rules, from the stored
    copy keys): which posts are copies and of what, and which posts and accounts are spam."""

    copies: set[int] = field(default_factory=set)  # post pks
    reach: Counter[int] = field(default_factory=Counter)  # an original's pk -> its copies
    spam_posts: set[int] = field(default_factory=set)
    spam_accounts: dict[str, int] = field(default_factory=dict)  # account key -> its posts

    def is_spam(self, pk: int, account: str) -> bool:
        return pk in self.spam_posts or account in self.spam_accounts


def _links(given: Any, found: Any) -> list[str]:
    """A post's links as its source gave them and as its text holds them, compared alike."""
    links = {u.rstrip("/").casefold() for u in _list(given) if isinstance(u, str)}
    return sorted(links.union(_list(found)))


def _context(conn: Connection, scope: _Scope, voices: Voices) -> Context:
    """Copies and spam, oldest post first, as reports/editorial.py decides them: a post is a copy
    when it reposts another (`repost_of`, or written out "RT @name: …") or says the same words as
    an earlier post; a post is spam on its own (stored), or by its account saying the same words
    or sharing the same link three times or more; an account is spam when at least three of its
    posts, and at least half, are spam (or when the curation file calls it a bot)."""
    stmt = scope.select(
        POSTS.c.id, POSTS.c.post_id, POSTS.c.author, POSTS.c.repost_of, _raw(POSTS.c.links),
        _raw(ANALYSIS.c.links, "text_links"), ANALYSIS.c.copy_key, ANALYSIS.c.repost, ANALYSIS.c.spam,
    ).order_by(POSTS.c.created_at, POSTS.c.id).execution_options(yield_per=5000)  # fmt: skip
    ctx = Context()
    first: dict[str, int] = {}  # copy key -> the original's pk
    by_id: dict[str, int] = {}  # an original's post id -> its pk
    said: Counter[tuple[str, str]] = Counter()
    shared: Counter[tuple[str, str]] = Counter()
    posts: list[tuple[int, str, str | None, Iterable[str]]] = []
    accounts = _Accounts()
    for r in conn.execute(stmt):
        account = accounts[r.author]
        links = _links(r.links, r.text_links) if _has(r.links) or _has(r.text_links) else ()
        original = by_id.get(r.repost_of or "") or first.get(r.copy_key or "")
        if original is not None or r.repost_of or r.repost:
            ctx.copies.add(r.id)
            if original is not None:
                ctx.reach[original] += 1
        else:
            by_id[r.post_id] = r.id
            if r.copy_key:
                first[r.copy_key] = r.id
        if r.spam:
            ctx.spam_posts.add(r.id)
        if r.copy_key:
            said[(account, r.copy_key)] += 1
        shared.update((account, link) for link in links)
        posts.append((r.id, account, r.copy_key, links))
    posted, spammed = Counter[str](), Counter[str]()
    for pk, account, key, its_links in posts:
        if (key and said[(account, key)] >= REPEATS) or any(
            shared[(account, link)] >= REPEATS for link in its_links
        ):
            ctx.spam_posts.add(pk)
        posted[account] += 1
        spammed[account] += pk in ctx.spam_posts
    ctx.spam_accounts = {
        a: posted[a] for a, n in spammed.items() if n >= REPEATS and 2 * n >= posted[a]
    }
    ctx.spam_accounts.update({bot: posted[bot] for bot in voices.bots if posted[bot]})
    return ctx


class Scan:
    """One streamed pass over narrow columns: term, link and hashtag counts, and candidates to show.

    `add` applies the editorial rules (docs/report.md): copies and spam are counted, never shown;
    spam's terms, links and hashtags are not counted; low-content posts and technical problems are
    never highlights, questions or pledges (technical problems are the organisers' own list);
    flagged disclosures are never shown unless pinned; questions come from the audience only.
    """

    def __init__(self, context: Context | None = None, voices: Voices | None = None) -> None:
        self.context = context or Context()
        self.voices = voices or Voices()
        self.terms: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.all_terms: Counter[str] = Counter()
        # a term's first account in a part, and the terms of a part more than one account used
        self.term_author: defaultdict[str, dict[str, str]] = defaultdict(dict)
        self.shared_terms: defaultdict[str, set[str]] = defaultdict(set)
        self.links: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.all_links: Counter[str] = Counter()
        self.hashtags: Counter[str] = Counter()  # '#copro16' -> posts writing it, in any case
        self.hashtag_spellings: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.pinned: defaultdict[str, list[int]] = defaultdict(list)
        self.heaps: defaultdict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
        # the shown lists' candidates, per account, so that no account fills a list
        self.by_account: defaultdict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(
            list
        )
        self.counts: Counter[tuple[str, str]] = Counter()
        self.accounts = _Accounts()

    def add(self, r: Any) -> None:
        account = self.accounts[r.author]
        part, ctx = r.part, self.context
        copy, spam = r.id in ctx.copies, ctx.is_spam(r.id, account)
        if r.pinned:
            self.pinned[part].append(r.id)
        if copy:
            self.counts[(part, "copies")] += 1
        if spam:
            self.counts[(part, "spam")] += 1
            return
        self._count(r, part, account, copy)
        if copy:
            return  # a copy's words are its original's: counted as its reach, never shown
        words = sum(1 for t in r.terms or () if " " not in t and t[0] != "#")
        engagement = (r.engagement or 0) + 2 * ctx.reach[r.id]
        rank = (words >= 2, engagement, words, -r.id)
        if r.technical:
            self.counts[(part, "technical")] += 1
            self._keep("technical", part, rank)
            return
        if r.disclosure and not r.pinned:
            self.counts[(part, "disclosures")] += 1
            self._keep("disclosures", part, rank)
            return
        if r.low_content:
            return
        if not (r.question or r.action):  # they have lists of their own
            self._keep_shown("best", part, account, rank)
        if r.question and self.voices.role(account) is None:
            self.counts[(part, "questions")] += 1
            self._keep_shown("questions", part, account, rank)
        if r.action:
            self.counts[(part, "actions")] += 1
            self._keep_shown("actions", part, account, rank)
        if media := len(_list(r.media)):
            self.counts[(part, "media")] += media
            self._keep("media", part, rank)
        if not (r.question or r.action):  # key points never are either
            voice = bool(r.quote) or self.voices.role(account) in ("organiser", "speaker")
            self._keep("sample", part, (voice, (r.id * 2654435761) % 2**32, -r.id), SAMPLE)

    def _count(self, r: Any, part: str, account: str, copy: bool) -> None:
        """Links and hashtags as shared (copies too); terms as people wrote them (originals only,
        not technical problems or low content)."""
        if _has(r.links):
            links = {u for u in _list(r.links) if isinstance(u, str)}
            self.links[part].update(links)
            self.all_links.update(links)
        spellings: defaultdict[str, set[str]] = defaultdict(set)  # this post's, once each
        for tag in (t.lstrip("#") for t in r.hashtags or () if isinstance(t, str)):
            spellings["#" + tag.casefold()].add("#" + tag)
        self.hashtags.update(spellings.keys())
        for key, written in spellings.items():
            self.hashtag_spellings[key].update(written)
        if copy or r.technical or r.low_content:
            return
        terms = r.terms or ()
        self.terms[part].update(terms)
        self.all_terms.update(terms)
        seen, shared = self.term_author[part], self.shared_terms[part]
        for term in set(terms).difference(shared):  # most terms are soon shared: skip them
            if seen.setdefault(term, account) != account:
                shared.add(term)

    @property
    def hashtag_forms(self) -> dict[str, str]:
        """Each hashtag as the story writes it ('#copro16' -> '#CoPro16'): its spelling the most
        posts wrote, the first in code-point order on a tie, so the same on every run."""
        return {
            key: min(written.items(), key=lambda form: (-form[1], form[0]))[0]
            for key, written in self.hashtag_spellings.items()
        }

    def _keep(self, kind: str, part: str, rank: tuple[Any, ...], size: int = KEEP) -> None:
        heap = self.heaps[(kind, part)]
        heapq.heappush(heap, rank)
        if len(heap) > size:
            heapq.heappop(heap)

    def _keep_shown(self, kind: str, part: str, account: str, rank: tuple[Any, ...]) -> None:
        """One account's best few for a list (one more than it may show, should one go as a
        near-duplicate); `ranked` merges them."""
        heap = self.by_account[(kind, part, account)]
        heapq.heappush(heap, rank)
        if len(heap) > PER_ACCOUNT + 1:
            heapq.heappop(heap)

    def _merge(self) -> None:
        for (kind, part, _), ranks in self.by_account.items():
            for rank in ranks:
                self._keep(kind, part, rank)
        self.by_account.clear()

    def ranked(self, kind: str, part: str) -> list[int]:
        """Post pks of a part's candidates of `kind`, best first."""
        self._merge()
        return [-rank[-1] for rank in sorted(self.heaps.get((kind, part), []), reverse=True)]

    def people_terms(self, part: str) -> Counter[str]:
        """The part's term counts, only terms more than one account used (a theme needs two)."""
        shared = self.shared_terms.get(part, set())
        return Counter({t: n for t, n in self.terms[part].items() if t in shared})

    def wanted(self) -> list[int]:
        """The posts read whole: every candidate but the key-point sample (read as text only)."""
        self._merge()
        ids = {-rank[-1] for (kind, _), heap in self.heaps.items() if kind != "sample"
               for rank in heap}  # fmt: skip
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
    # posts not shown, by reason: deleted, excluded, opted_out, muted, undated
    hidden: dict[str, int]
    untagged: int  # visible posts not yet matched to a session
    context: Context = field(default_factory=Context)


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
    conn: Connection, scope: _Scope, n: int, leave_out: Iterable[str]
) -> dict[str, list[tuple[str, str | None, int]]]:
    """The audience's most active accounts per part: never spam, bots, organisers or speakers."""
    audience = scope.account.not_in(sorted(leave_out))
    counted = scope.select(scope.part, POSTS.c.author, func.max(POSTS.c.author_name).label("name"),
                           func.count().label("n")).where(audience)  # fmt: skip
    counted = counted.group_by(scope.part, POSTS.c.author).subquery()
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


def _scan(conn: Connection, scope: _Scope, context: Context, voices: Voices) -> Scan:
    engagement = (func.coalesce(POSTS.c.likes, 0) + 2 * func.coalesce(POSTS.c.reposts, 0)
                  + func.coalesce(POSTS.c.replies, 0) + 2 * func.coalesce(POSTS.c.quotes, 0))  # fmt: skip
    a = ANALYSIS.c
    stmt = scope.select(
        POSTS.c.id, scope.part, POSTS.c.author, engagement.label("engagement"),
        ASSIGN.c.highlight.label("pinned"), a.question, a.action, a.technical, a.low_content,
        a.quote, a.disclosure, a.terms, POSTS.c.hashtags, _raw(POSTS.c.links), _raw(POSTS.c.media),
    ).execution_options(yield_per=2000)  # fmt: skip
    scan = Scan(context, voices)
    for row in conn.execute(stmt):
        scan.add(row)
    return scan


def posts_by_id(conn: Connection, ids: list[int]) -> list[Any]:
    """Whole rows (whether an organiser pinned them, and their analysis) for the few posts a
    report shows."""
    a = ANALYSIS.c
    stmt = (
        select(POSTS, ASSIGN.c.highlight.label("pinned"), ASSIGN.c.session_id, a.disclosure,
               a.disclosure_reason, a.role, a.speaker)
        .outerjoin(ASSIGN, ASSIGN.c.post_pk == POSTS.c.id)
        .outerjoin(ANALYSIS, ANALYSIS.c.post_pk == POSTS.c.id)
    )  # fmt: skip
    return [
        r
        for i in range(0, len(ids), 400)
        for r in conn.execute(stmt.where(POSTS.c.id.in_(ids[i : i + 400])))
    ]


def texts_by_id(conn: Connection, ids: list[int], read: int = MAX_ANALYSED) -> list[Any]:
    """The first `read` characters of each post's text, with its account and when, oldest first:
    what key points are drawn from."""
    text = func.substr(POSTS.c.text, 1, read).label("text")
    stmt = select(POSTS.c.id, POSTS.c.platform, POSTS.c.author, POSTS.c.author_name, POSTS.c.url,
                  text, POSTS.c.created_at)  # fmt: skip
    rows = [
        r
        for i in range(0, len(ids), 400)
        for r in conn.execute(stmt.where(POSTS.c.id.in_(ids[i : i + 400])))
    ]
    return sorted(rows, key=lambda r: (r.created_at, r.id))


def _sources(engine: Engine, conn: Connection, config: Config) -> list[SourceView]:
    """Each configured source's health from the run log, with the posts it found; then imports."""
    clock = EventClock(config.event.timezone)
    found = select(POSTS.c.source, func.count()).group_by(POSTS.c.source)
    posts = {r[0]: r[1] for r in conn.execute(found)}
    views = []
    for h in source_health(engine, config):
        if not h.enabled and not posts.get(h.name):
            continue
        failing = h.failures_in_a_row > 0
        views.append(SourceView(
            h.name, posts.get(h.name, 0), "failed" if failing else "ok" if h.last_success else "never",
            clock.shown(h.last_error_at) if failing and h.last_error_at else None,
            clock.shown(h.last_success) if h.last_success else None,
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
    engine: Engine, conn: Connection, config: Config, show: Mapping[str, int],
    voices: Voices | None = None,
) -> ReportData:  # fmt: skip
    """Every aggregate the story needs, in a handful of queries and two streamed passes."""
    voices = voices or Voices()
    scope = _Scope(config, voices)
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
    context = _context(conn, scope, voices)
    leave_out = {*context.spam_accounts, *voices.not_audience}
    contributors = _contributors(conn, scope, show.get("contributors", 6), leave_out)
    scan = _scan(conn, scope, context, voices)
    hidden, untagged = _unshown(conn, scope)
    return ReportData(
        tz=config.event.timezone, totals=totals, minutes=minutes, contributors=contributors,
        people=int(people), platforms=platforms, scan=scan, sources=sources, hidden=hidden,
        untagged=untagged, context=context,
    )  # fmt: skip
