"""The database reads behind a story: SQL aggregates per part, one streamed pass, the few posts shown.

Only visible posts are read (reports/scope.py); what is hidden is only counted, for the
data-quality line. reports/context.py first counts who posted and decides over the whole event
which posts are copies and which are spam (docs/report.md, "Editorial rules"), in SQL; then one
pass over narrow columns (`Scan`) counts terms, links and hashtags and keeps the candidates each
list may show, by the editorial rules. What a report holds grows with the vocabulary, the links
and the accounts, never with a Python object for every post.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import Integer, and_, case, func, select, type_coerce
from sqlalchemy.engine import Connection, Engine

from aggregator.clock import EventClock
from aggregator.scrubber import account_key
from aggregator.settings import Config
from reports.context import Authors, Context, authors
from reports.context import context as build_context
from reports.model import SourceView
from reports.scope import ANALYSIS, ASSIGN, EMPTY, POSTS, Accounts, Scope, as_text, decoded
from reports.text import MAX_ANALYSED, clean_text
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

POSITIVE, NEGATIVE = 0.1, -0.1  # TextBlob polarity beyond these makes a post positive or negative
KEEP = 30  # candidates kept per part and kind, enough to fill a list after near-duplicates go
PER_ACCOUNT = 2  # at most this many of one account's posts in one list of a part
SAMPLE = 200  # posts per part that key points are drawn from (docs/report.md, "Key points")
PRUNE = 20_000  # candidates kept per account before those that cannot make a list go (Scan._prune)


@dataclass(frozen=True)
class Voices:
    """Who is who, by account key: organisers and speakers are recognised (not the audience),
    bots are spam, and muted accounts are left out of the whole story."""

    organisers: frozenset[str] = frozenset()
    speakers: frozenset[str] = frozenset()
    bots: frozenset[str] = frozenset()
    muted: frozenset[str] = frozenset()
    asked: frozenset[int] = frozenset()  # posts a moderator made questions for the chair

    @classmethod
    def of(
        cls, config: Config, roles: Mapping[str, str], mutes: Iterable[str],
        asked: frozenset[int] = frozenset(),
    ) -> Voices:  # fmt: skip
        """From `[event] organiser_accounts`, each session's `speaker_accounts`, and the curation
        file's roles and mutes (and the wall's questions for the chair)."""
        said = lambda role: {a for a, r in roles.items() if r == role}  # noqa: E731
        speakers = {a for s in config.sessions for a in s.speaker_accounts}
        return cls(
            organisers=frozenset({*config.event.organiser_accounts, *said("organiser")}),
            speakers=frozenset({*speakers, *said("speaker")} - said("organiser")),
            bots=frozenset(said("bot")),
            muted=frozenset(account_key(a) for a in mutes),
            asked=asked,
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


@dataclass
class PartTotals:
    posts: int
    people: int
    positive: int
    negative: int


_decode = json.JSONDecoder().raw_decode  # stored JSON starts at its first character


def _words(terms: list[str]) -> int:
    """How many of a post's terms are single words, not hashtags (reports.text.terms: a phrase
    is two words and one space, a hashtag one word after '#'), counted in C, not term by term."""
    joined = "\x00".join(terms)
    return len(terms) - joined.count(" ") - f"\x00{joined}".count("\x00#") if terms else 0


class Scan:
    """One streamed pass over narrow columns: term, link and hashtag counts, and candidates to show.

    `add` applies the editorial rules (docs/report.md): copies and spam are counted, never shown;
    spam's terms, links and hashtags are not counted; low-content posts and technical problems are
    never highlights, questions or pledges (technical problems are the organisers' own list);
    flagged disclosures are never shown unless pinned; questions come from the audience only.
    Call `finish` after the last post.
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
        self.written_hashtags: Counter[str] = Counter()  # a post's hashtags as stored -> posts
        self.pinned: defaultdict[str, list[int]] = defaultdict(list)
        self.heaps: defaultdict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
        # the shown lists' candidates, per account, so that no account fills a list; none below
        # its list's floor, which no later post can lower (`_prune`)
        self.by_account: defaultdict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(
            list
        )
        self.floors: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.held = 0
        self.counts: Counter[tuple[str, str]] = Counter()
        self.accounts = Accounts()
        self.roles: dict[str, str | None] = {}

    def add(self, r: Any) -> None:
        """One visible post: its `_scan` columns, in that order."""
        (pk, part, author, engagement, pinned, question, action, technical, low, quote,
         disclosure, terms, hashtags, links, media, reposted, spam) = r  # fmt: skip
        account, ctx, counts = self.accounts[author], self.context, self.counts
        question = question or pk in self.voices.asked  # a question for the chair
        copy = reposted or pk in ctx.text_copies
        if pinned:
            self.pinned[part].append(pk)
        if copy:
            counts[(part, "copies")] += 1
        if spam or pk in ctx.spam_posts or account in ctx.spam_accounts:
            counts[(part, "spam")] += 1
            return
        if links not in EMPTY:  # links and hashtags as shared: copies too
            self._count_links(part, links)
        if hashtags not in EMPTY:
            self.written_hashtags[hashtags] += 1  # a stream writes the same few again and again
        held_back = disclosure and not pinned
        if copy or (low and not technical and not held_back):
            return  # a copy's words are its original's: counted as its reach, never shown
        words = _decode(terms)[0] if terms else []
        if not (technical or low):  # terms as people wrote them
            self._count_terms(part, account, words)
        said = _words(words)
        rank = (said >= 2, (engagement or 0) + 2 * ctx.reach.get(pk, 0), said, -pk)
        if technical:
            counts[(part, "technical")] += 1
            self._keep("technical", part, rank)
        elif held_back:
            counts[(part, "disclosures")] += 1
            self._keep("disclosures", part, rank)
        elif not low:
            self._shown(pk, part, account, rank, (question, action, quote), media)

    def _shown(
        self, pk: int, part: str, account: str, rank: tuple[Any, ...],
        classes: tuple[bool, bool, bool], media: str | None,
    ) -> None:  # fmt: skip
        """The lists a post may be shown in, and the key points' sample."""
        question, action, quote = classes
        role = self.roles[account] if account in self.roles else self._role(account)
        if not (question or action):  # they have lists of their own
            self._keep_shown("best", part, account, rank)
        if question and role is None:
            self.counts[(part, "questions")] += 1
            self._keep_shown("questions", part, account, rank)
        if action:
            self.counts[(part, "actions")] += 1
            self._keep_shown("actions", part, account, rank)
        if media not in EMPTY and (found := len(decoded(media))):
            self.counts[(part, "media")] += found
            self._keep("media", part, rank)
        if not (question or action):  # key points never are either
            voice = bool(quote) or role in ("organiser", "speaker")
            self._keep("sample", part, (voice, (pk * 2654435761) % 2**32, -pk), SAMPLE)

    def _role(self, account: str) -> str | None:
        self.roles[account] = role = self.voices.role(account)
        return role

    def _count_links(self, part: str, links: str) -> None:
        """A post's links, each once."""
        shared = {u for u in decoded(links) if isinstance(u, str)}
        self.links[part].update(shared)
        self.all_links.update(shared)

    def _count_terms(self, part: str, account: str, terms: list[str]) -> None:
        """Terms as people wrote them (originals only, not technical problems or low content)."""
        self.terms[part].update(terms)
        seen, shared = self.term_author[part], self.shared_terms[part]
        for term in set(terms).difference(shared):  # most terms are soon shared: skip them
            if seen.setdefault(term, account) != account:
                shared.add(term)

    def finish(self) -> None:
        """The event's terms and hashtags from what the posts wrote; pins in key order."""
        for counts in self.terms.values():
            self.all_terms.update(counts)
        for written, posts in self.written_hashtags.items():
            spellings: defaultdict[str, set[str]] = defaultdict(set)  # this post's, once each
            for tag in (t.lstrip("#") for t in decoded(written) if isinstance(t, str)):
                spellings["#" + tag.casefold()].add("#" + tag)
            for key, forms in spellings.items():
                self.hashtags[key] += posts
                self.hashtag_spellings[key].update(dict.fromkeys(forms, posts))
        for pks in self.pinned.values():
            pks.sort()

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
        floor = self.floors.get((kind, part))
        if floor is not None and rank < floor:
            return
        heap = self.by_account[(kind, part, account)]
        heapq.heappush(heap, rank)
        if len(heap) > PER_ACCOUNT + 1:
            heapq.heappop(heap)
        self.held += 1
        if self.held > PRUNE:
            self._prune()

    def _prune(self) -> None:
        """Drop the candidates below each list's floor: the KEEP-th best of every account's best
        few. A later post only ever raises it (it joins its account's few, or pushes out a worse
        one), so nothing below it can be among the KEEP a list draws on, however the scan goes."""
        lists: defaultdict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
        for (kind, part, _), ranks in self.by_account.items():
            lists[(kind, part)].extend(ranks)
        for at, ranks in lists.items():
            if len(ranks) >= KEEP:
                self.floors[at] = heapq.nlargest(KEEP, ranks)[-1]
        for key, ranks in list(self.by_account.items()):
            floor = self.floors.get(key[:2])
            if floor is not None:
                ranks[:] = [rank for rank in ranks if rank >= floor]
                heapq.heapify(ranks)
            if not ranks:
                del self.by_account[key]
        self.held = sum(len(ranks) for ranks in self.by_account.values())

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
    conn: Connection, scope: Scope, people: Mapping[str, int]
) -> tuple[dict[str, PartTotals], dict[str, dict[datetime, int]], Counter[str]]:
    """Each part's posts and sentiment (with its `people`), its posts by minute, and the posts by
    platform, in one query."""
    positive = func.sum(case((POSTS.c.sentiment_polarity > POSITIVE, 1), else_=0))
    negative = func.sum(case((POSTS.c.sentiment_polarity < NEGATIVE, 1), else_=0))
    minute = _minute(conn).label("minute")
    stmt = scope.select(scope.part, minute, POSTS.c.platform, func.count(), positive, negative,
                        analysed=False).group_by(scope.part, minute, POSTS.c.platform)  # fmt: skip
    totals: dict[str, PartTotals] = {}
    minutes: defaultdict[str, Counter[datetime]] = defaultdict(Counter)
    platforms: Counter[str] = Counter()
    when: dict[str, datetime] = {}
    for part, key, platform, n, up, down in conn.execute(stmt):
        at = when.get(key) or when.setdefault(key, datetime.fromisoformat(key).replace(tzinfo=UTC))
        minutes[part][at] += n
        platforms[platform] += n
        part_totals = totals.setdefault(part, PartTotals(0, people.get(part, 0), 0, 0))
        part_totals.posts += n
        part_totals.positive += int(up or 0)
        part_totals.negative += int(down or 0)
    ordered = Counter(dict(sorted(platforms.items())))  # ties in name order, on every database
    return totals, {part: dict(counts) for part, counts in minutes.items()}, ordered


def _contributors(
    conn: Connection, scope: Scope, who: Authors, accounts: Accounts, n: int, leave_out: set[str]
) -> dict[str, list[tuple[str, str | None, int]]]:
    """The audience's most active accounts per part: never spam, bots, organisers or speakers;
    from the parts' most active authors, or, where spam accounts left too few of them, counted
    again for that part."""
    out = {}
    for part, listed in who.active.items():
        kept = [(a, name, count) for count, a, name in listed if accounts[a] not in leave_out][:n]
        if len(kept) < n and part in who.crowded:
            kept = _counted(
                conn, scope, part, n, [a for a, k in accounts.items() if k in leave_out]
            )
        if kept:
            out[part] = kept
    return out


def _counted(
    conn: Connection, scope: Scope, part: str, n: int, leave_out: list[str]
) -> list[tuple[str, str | None, int]]:
    """A part's `n` most active authors, none of the authors `leave_out`."""
    name, count = func.max(POSTS.c.author_name), func.count()
    stmt = scope.select(POSTS.c.author, name, count, analysed=False).where(
        scope.part == part, POSTS.c.author.not_in(leave_out)
    )
    ranked = stmt.group_by(POSTS.c.author).order_by(count.desc(), POSTS.c.author).limit(n)
    return [(author, written, int(posts)) for author, written, posts in conn.execute(ranked)]


def _scan(conn: Connection, scope: Scope, context: Context, voices: Voices) -> Scan:
    """Every visible post's narrow columns through `Scan.add`, streamed."""
    engagement = (func.coalesce(POSTS.c.likes, 0) + 2 * func.coalesce(POSTS.c.reposts, 0)
                  + func.coalesce(POSTS.c.replies, 0) + 2 * func.coalesce(POSTS.c.quotes, 0))  # fmt: skip
    a = ANALYSIS.c
    flag = lambda column: type_coerce(column, Integer)  # noqa: E731 (only its truth is read)
    stmt = scope.select(
        POSTS.c.id, scope.part, POSTS.c.author, engagement, flag(ASSIGN.c.highlight),
        flag(a.question), flag(a.action), flag(a.technical), flag(a.low_content), flag(a.quote),
        a.disclosure, as_text(a.terms), as_text(POSTS.c.hashtags), as_text(POSTS.c.links),
        as_text(POSTS.c.media), flag(scope.reposted), flag(a.spam),
    ).execution_options(yield_per=5000)  # fmt: skip
    scan = Scan(context, voices)
    add = scan.add
    for row in conn.execute(stmt):
        add(row)
    scan.finish()
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


def _unshown(conn: Connection, scope: Scope) -> tuple[dict[str, int], int]:
    """Posts not shown, by reason, and visible posts not yet tagged, in one query."""
    sums = [func.sum(case((cond, 1), else_=0)) for cond in scope.hidden.values()]
    waiting = func.sum(case((and_(scope.visible, ASSIGN.c.post_pk.is_(None)), 1), else_=0))
    row = conn.execute(select(*sums, waiting).select_from(scope.tagged)).one()
    *hidden, untagged = (int(v or 0) for v in row)
    return dict(zip(scope.hidden, hidden, strict=True)), untagged


def report_data(
    engine: Engine, conn: Connection, config: Config, show: Mapping[str, int],
    voices: Voices | None = None,
) -> ReportData:  # fmt: skip
    """Every aggregate the story needs, in a handful of queries and one streamed pass."""
    voices = voices or Voices()
    scope, accounts = Scope(config, voices.muted), Accounts()
    who = authors(conn, scope, accounts, voices.not_audience)
    totals, minutes, platforms = _counts(conn, scope, who.people)
    context = build_context(conn, scope, accounts, who, voices.bots)
    leave_out = {*context.spam_accounts, *voices.not_audience}
    contributors = _contributors(conn, scope, who, accounts, show.get("contributors", 6), leave_out)
    scan = _scan(conn, scope, context, voices)
    hidden, untagged = _unshown(conn, scope)
    return ReportData(
        tz=config.event.timezone, totals=totals, minutes=minutes, contributors=contributors,
        people=who.everyone, platforms=platforms, scan=scan,
        sources=_sources(engine, conn, config), hidden=hidden, untagged=untagged, context=context,
    )  # fmt: skip
