"""Database -> Story: an overview, each session in programme order, and the posts before and after.

Counts come from SQL aggregates and one streamed pass over narrow columns (text features were stored
once per post by `pipeline.analyse`); only the few posts shown are read whole.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from statistics import median
from typing import Any

from sqlalchemy import and_, case, false, func, literal, not_, or_, select
from sqlalchemy import distinct as sql_distinct
from sqlalchemy.engine import Connection, Engine

from aggregator.config import Config, SessionConfig
from aggregator.health import source_health
from aggregator.privacy import Redactor, opt_out_redactor
from reports.charts import Activity, spread, window
from reports.text import (
    Facts,
    clean_text,
    distinct,
    distinctive_terms,
    join_and,
    narrative,
    question_sentence,
    sanitise_html,
    surface_forms,
)
from storage.models import Assignment, PostAnalysis, PostRow

__all__ = [
    "Contributor",
    "MediaView",
    "Overview",
    "Part",
    "PostView",
    "Sentiment",
    "SourceView",
    "Story",
    "Tally",
    "build_story",
]

SHOW = {
    "contributors": 6,
    "highlights": 6,
    "questions": 5,
    "actions": 5,
    "links": 6,
    "media": 6,
    "themes": 6,
}


@dataclass
class MediaView:
    url: str | None
    type: str
    alt: str | None  # the author's description; None when they gave none
    post_url: str | None = None
    author: str = ""


@dataclass
class PostView:
    platform: str
    post_id: str
    url: str | None
    author: str
    author_name: str | None
    created_at: datetime  # event time zone
    when: str  # "13:25", or "Fri 25 Nov, 13:25" away from the event's first day
    text: str  # plain text without control or invisible characters; NOT escaped
    html: str  # the platform's HTML after the allowlist sanitiser; "" when it gave none
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    pinned: bool = False
    media: list[MediaView] = field(default_factory=list)


@dataclass
class Tally:
    label: str
    count: int


@dataclass
class Contributor:
    author: str
    name: str | None
    posts: int


@dataclass
class Sentiment:
    positive: int = 0
    neutral: int = 0
    negative: int = 0


@dataclass
class Part:
    id: str  # a session id, or 'before' / 'after'
    kind: str  # session | before | after
    title: str
    start: datetime | None  # sessions only, event time zone
    end: datetime | None
    time_label: str = ""
    speakers: list[str] = field(default_factory=list)
    description: str = ""
    note: str = ""  # the organiser's own paragraph, from the curation file
    posts: int = 0
    people: int = 0
    narrative: str = ""
    themes: list[Tally] = field(default_factory=list)
    highlights: list[PostView] = field(default_factory=list)
    questions: list[PostView] = field(default_factory=list)
    questions_total: int = 0
    actions: list[PostView] = field(default_factory=list)
    actions_total: int = 0
    links: list[Tally] = field(default_factory=list)
    media: list[MediaView] = field(default_factory=list)
    media_total: int = 0
    contributors: list[Contributor] = field(default_factory=list)
    sentiment: Sentiment = field(default_factory=Sentiment)
    activity: Activity | None = None


@dataclass
class SourceView:
    name: str
    posts: int
    status: str  # ok | failed | running | interrupted | never (no run recorded)
    last_run: datetime | None = None  # event time zone
    last_ok: datetime | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Overview:
    posts: int
    people: int
    sessions: int
    platforms: list[Tally]
    hashtags: list[Tally]
    links: list[Tally]
    activity: Activity  # across the event's day(s); sessions are drawn over it
    sources: list[SourceView]
    quality: list[str]  # the data-quality line, sentence by sentence


@dataclass
class Story:
    event: str
    date_label: str
    timezone: str
    hashtags: list[str]
    generated_at: datetime
    overview: Overview
    parts: list[Part]  # before, every session in programme order, after

    @property
    def sessions(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "session"]


def _date_label(sessions: tuple[SessionConfig, ...], tz: tzinfo) -> str:
    if not sessions:
        return ""
    first, last = (
        sessions[0].start.astimezone(tz),
        (sessions[-1].end - timedelta(seconds=1)).astimezone(tz),
    )
    if first.date() == last.date():
        return f"{first:%A} {first.day} {first:%B %Y}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {first:%B %Y}"
    return f"{first.day} {first:%B} – {last.day} {last:%B %Y}"


def _when(at: datetime, day: Any) -> str:
    return f"{at:%H:%M}" if at.date() == day else f"{at:%a} {at.day} {at:%b}, {at:%H:%M}"


def _post(row: Any, tz: tzinfo, day: Any, redactor: Redactor) -> PostView:
    """A post as shown, with any opted-out account or name it mentions removed (posts stored
    before that person opted out still carry them)."""
    fields = {**row._mapping, **(redactor.fields(row._mapping) if redactor else {})}
    at = row.created_at.astimezone(tz)
    url = fields["url"] if isinstance(fields["url"], str) else None
    return PostView(
        platform=row.platform, post_id=row.post_id, url=url, author=clean_text(row.author),
        author_name=clean_text(row.author_name) if row.author_name else None, created_at=at,
        when=_when(at, day), text=clean_text(fields["text"]), html=sanitise_html(fields["html"]),
        likes=row.likes or 0, reposts=row.reposts or 0, replies=row.replies or 0,
        quotes=row.quotes or 0, pinned=bool(row.pinned),
        media=[_media(m, url, row.author) for m in fields["media"] or [] if isinstance(m, dict)],
    )  # fmt: skip


def _media(item: Mapping[str, Any], post_url: str | None, author: str) -> MediaView:
    alt = clean_text(item.get("alt") or "").strip() or None
    url = item.get("url") if isinstance(item.get("url"), str) else None
    return MediaView(url, str(item.get("type") or "image"), alt, post_url, clean_text(author))


def _parts(config: Config, notes: Mapping[str, str]) -> list[Part]:
    tz = config.event.timezone
    sessions = []
    for s in config.sessions:
        start, end = s.start.astimezone(tz), s.end.astimezone(tz)
        sessions.append(Part(s.id, "session", s.title, start, end, f"{start:%H:%M}–{end:%H:%M}",
                             list(s.speakers), s.description, notes.get(s.id, "")))  # fmt: skip
    return [
        Part("before", "before", "Before the event", None, None, note=notes.get("before", "")),
        *sessions,
        Part("after", "after", "After the event", None, None, note=notes.get("after", "")),
    ]


def _fill(part: Part, data: ReportData, posts: Mapping[int, PostView]) -> None:
    """A part's counts, activity and the posts it shows, from the aggregates and the scan."""
    totals, scan = data.totals.get(part.id), data.scan
    if totals:
        part.posts, part.people = totals.posts, totals.people
        neutral = totals.posts - totals.positive - totals.negative
        part.sentiment = Sentiment(totals.positive, neutral, totals.negative)
    minutes = data.minutes.get(part.id, {})
    tz = data.tz
    if part.start and part.end:
        part.activity = window(
            minutes, part.start.astimezone(UTC), part.end.astimezone(UTC), 24, tz
        )
    else:
        part.activity = spread(minutes, tz)
    pinned = [posts[i] for i in scan.pinned.get(part.id, []) if i in posts]
    best = [posts[i] for i in scan.ranked("best", part.id) if i in posts]
    part.highlights = distinct(
        [*pinned, *best], lambda p: p.text, max(SHOW["highlights"], len(pinned))
    )
    for kind in ("questions", "actions"):
        found = [posts[i] for i in scan.ranked(kind, part.id) if i in posts]
        setattr(part, kind, distinct(found, lambda p: p.text, SHOW[kind]))
        setattr(part, f"{kind}_total", scan.counts[(part.id, kind)])
    shown = [m for i in scan.ranked("media", part.id) if i in posts for m in posts[i].media]
    part.media, part.media_total = shown[: SHOW["media"]], scan.counts[(part.id, "media")]
    part.links = [Tally(u, n) for u, n in scan.links[part.id].most_common(SHOW["links"])]
    part.contributors = [Contributor(clean_text(a), clean_text(n) if n else None, c)
                         for a, n, c in data.contributors.get(part.id, [])]  # fmt: skip


def _facts(part: Part, sessions: list[Part], turn: int) -> Facts:
    counts = sorted(p.posts for p in sessions)
    busiest = len(sessions) >= 3 and part.posts == counts[-1] and counts.count(counts[-1]) == 1
    quiet = len(sessions) >= 3 and not busiest and part.posts <= 0.5 * median(counts)
    top = part.contributors[0] if part.contributors else None
    activity = part.activity
    s = part.sentiment
    return Facts(
        kind=part.kind, turn=turn, posts=part.posts, people=part.people,
        busiest=part.kind == "session" and busiest, quiet=part.kind == "session" and quiet,
        peak=activity.peak if activity else None, peak_unit=activity.peak_unit if activity else "minute",
        peak_count=activity.peak_count if activity else 0,
        later=activity.outside if activity and part.kind == "session" else 0,
        themes=[t.label for t in part.themes], questions=part.questions_total,
        question=next(filter(None, (question_sentence(p.text) for p in part.questions)), None),
        actions=part.actions_total, positive=s.positive / part.posts if part.posts else 0.0,
        negative=s.negative / part.posts if part.posts else 0.0,
        top_author=(top.name or top.author) if top else None, top_posts=top.posts if top else 0,
    )  # fmt: skip


def _themes(
    parts: list[Part],
    data: ReportData,
    config: Config,
    shown: Iterable[PostView],
    redactor: Redactor,
) -> None:
    """Each part's distinctive terms, as the programme or the posts write them; never a term that
    names someone who opted out."""
    names = [n for s in config.sessions for n in (*s.speakers, *s.keywords)]
    texts = [t for s in config.sessions for t in (s.title, s.description)]
    forms = surface_forms([*texts, *(p.text for p in shown)], names)
    forms.update(data.scan.hashtag_forms)
    skip = [f"#{h.casefold()}" for h in config.event.hashtags]
    for part in parts:
        found = distinctive_terms(
            data.scan.terms[part.id], data.scan.all_terms, SHOW["themes"], skip=skip
        )
        labels = [(forms.get(t.term, t.term), t.count) for t in found]
        part.themes = [Tally(label, n) for label, n in labels
                       if not redactor or redactor.scrubber.text(label, bare=True) == label]  # fmt: skip


def build_story(engine: Engine, config: Config, notes: Mapping[str, str] | None = None) -> Story:
    """The story of every visible post (not deleted, not excluded by an organiser, not opted out).
    `notes` are the organisers' own paragraphs by session id, or 'before' / 'after'."""
    tz = config.event.timezone
    parts = _parts(config, notes or {})
    day = config.sessions[0].start.astimezone(tz).date() if config.sessions else None
    with engine.connect() as conn:
        data = report_data(engine, conn, config, SHOW)
        redactor = opt_out_redactor(conn, config.privacy.opt_out)
        posts = {r.id: _post(r, tz, day, redactor) for r in posts_by_id(conn, data.scan.wanted())}
    for part in parts:
        _fill(part, data, posts)
    _themes(parts, data, config, posts.values(), redactor)
    sessions = [p for p in parts if p.kind == "session"]
    for turn, part in enumerate(parts):
        part.narrative = narrative(_facts(part, sessions, turn))
    return Story(
        event=config.event.name, date_label=_date_label(config.sessions, tz), timezone=str(tz),
        hashtags=list(config.event.hashtags),
        generated_at=datetime.now(UTC).astimezone(tz).replace(microsecond=0),
        overview=_overview(config, data, sessions), parts=parts,
    )  # fmt: skip


def _overview(config: Config, data: ReportData, sessions: list[Part]) -> Overview:
    tz = data.tz
    every: Counter[datetime] = Counter()
    for minutes in data.minutes.values():
        every.update(minutes)
    if sessions and sessions[0].start and sessions[-1].end:
        start = sessions[0].start.replace(minute=0, second=0) - timedelta(hours=1)
        end = sessions[-1].end + timedelta(minutes=59)
        end = end.replace(minute=0, second=0) + timedelta(hours=1)
    else:
        start = end = datetime.now(tz).replace(second=0, microsecond=0)
    scan = data.scan
    hashtags = [Tally(scan.hashtag_forms.get(k, k), n) for k, n in scan.hashtags.most_common(8)]
    return Overview(
        posts=sum(t.posts for t in data.totals.values()), people=data.people,
        sessions=len(sessions), platforms=[Tally(k, n) for k, n in data.platforms.most_common()],
        hashtags=hashtags, links=[Tally(u, n) for u, n in scan.all_links.most_common(8)],
        activity=window(every, start.astimezone(UTC), end.astimezone(UTC), 96, tz),
        sources=data.sources, quality=data.quality,
    )  # fmt: skip


# --- Reading the database: SQL aggregates, one streamed pass, and the few posts shown ---------------

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
    quality: list[str]


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


def _at(when: datetime) -> str:
    return f"{when.day} {when:%B %Y} at {when:%H:%M}"


def _origin(s: SourceView) -> str:
    posts = f"{s.posts} post{'s' if s.posts != 1 else ''}"
    if s.status == "imported":
        return f"{s.name} ({posts}, imported)"
    when = f"last collected {_at(s.last_ok)}" if s.last_ok else "not yet collected successfully"
    return f"{s.name} ({posts}, {when})"


def _problems(sources: list[SourceView]) -> list[str]:
    lines = []
    for s in sources:
        if s.status == "failed":
            when = f" ({_at(s.last_run)})" if s.last_run else ""
            lines.append(
                f"{s.name} failed on its latest run{when}: {s.error or 'no reason recorded'}"
            )
        elif s.status == "never":
            lines.append(f"{s.name} has not been collected yet.")
        lines += [f"{s.name}: {w}" for w in s.warnings[:3]]
        if len(s.warnings) > 3:
            lines.append(f"{s.name}: {len(s.warnings) - 3} more warnings (see aggregator status).")
    return lines


def _quality(conn: Connection, scope: _Scope, sources: list[SourceView]) -> list[str]:
    """The data-quality line: where posts came from and when, failures, gaps, and what is not shown."""
    used = [s for s in sources if s.posts or s.status != "never"]
    lines = [f"Posts came from {', '.join(_origin(s) for s in used)}."] if used else []
    problems = _problems(sources)
    lines += problems or (["No failures or gaps were recorded on the latest runs."] if used else [])
    sums = [func.sum(case((cond, 1), else_=0)) for cond in scope.hidden.values()]
    waiting = func.sum(case((and_(scope.visible, ASSIGN.c.post_pk.is_(None)), 1), else_=0))
    row = conn.execute(select(*sums, waiting).select_from(scope.joined)).one()
    deleted, excluded, opted, untagged = (int(v or 0) for v in row)
    hidden = [
        f"{deleted} deleted post{'s' if deleted != 1 else ''}" if deleted else "",
        f"{excluded} excluded by the organisers" if excluded else "",
        f"{opted} from people who opted out" if opted else "",
    ]
    if any(hidden):
        lines.append(f"Not shown: {join_and([h for h in hidden if h])}.")
    if untagged:
        lines.append(f"{untagged} posts are not matched to a session yet (run aggregator tag).")
    return lines or ["No posts have been collected yet."]


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
    return ReportData(
        tz=config.event.timezone, totals=totals, minutes=minutes,
        contributors=_contributors(conn, scope, show.get("contributors", 6)), people=int(people),
        platforms=platforms, scan=_scan(conn, scope), sources=sources,
        quality=_quality(conn, scope, sources),
    )  # fmt: skip
