"""Database -> Story: an overview, each session in programme order, and the posts before and after.

The assembler: reports/digest.py reads the numbers, reports/themes.py and reports/narrative.py turn them
into themes and paragraphs, and the Story's dataclasses (reports/model.py) are re-exported here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from statistics import median
from typing import Any

from sqlalchemy.engine import Engine

from aggregator.config import Config, SessionConfig
from aggregator.media import Archive, media_folder
from aggregator.privacy import Redactor, opt_out_redactor
from reports.charts import spread, window
from reports.digest import ReportData, posts_by_id, report_data
from reports.lang import post_language
from reports.model import (
    Contributor,
    MediaView,
    Overview,
    Part,
    PostView,
    Sentiment,
    SourceView,
    Story,
    Tally,
)
from reports.narrative import Facts, narrative, quality_lines
from reports.text import clean_text, distinct, question_sentence, sanitise_html, surface_forms
from reports.themes import distinctive_terms

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


def _post(row: Any, tz: tzinfo, day: Any, redactor: Redactor, archive: Archive) -> PostView:
    """A post as shown, with any opted-out account or name it mentions removed (posts stored
    before that person opted out still carry them), its language, and its archived images."""
    fields = {**row._mapping, **(redactor.fields(row._mapping) if redactor else {})}
    at = row.created_at.astimezone(tz)
    url = fields["url"] if isinstance(fields["url"], str) else None
    text = clean_text(fields["text"])
    language = post_language(text, row.lang)
    return PostView(
        platform=row.platform, post_id=row.post_id, url=url, author=clean_text(row.author),
        author_name=clean_text(row.author_name) if row.author_name else None, created_at=at,
        when=_when(at, day), text=text, html=sanitise_html(fields["html"]),
        likes=row.likes or 0, reposts=row.reposts or 0, replies=row.replies or 0,
        quotes=row.quotes or 0, pinned=bool(row.pinned),
        media=[_media(m, url, row.author, archive) for m in fields["media"] or []
               if isinstance(m, dict)],
        lang=language.lang, dir=language.dir,
    )  # fmt: skip


def _media(
    item: Mapping[str, Any], post_url: str | None, author: str, archive: Archive
) -> MediaView:
    alt = clean_text(item.get("alt") or "").strip() or None
    url = item.get("url") if isinstance(item.get("url"), str) else None
    kind = str(item.get("type") or "image")
    shown = archive.thumbnail(url)  # only ever an image: the archive keeps nothing else
    return MediaView(url, "image" if shown else kind, alt, post_url, clean_text(author),
                     *((shown.data_uri, shown.width, shown.height) if shown else ()))  # fmt: skip


def _parts(config: Config, notes: Mapping[str, str]) -> list[Part]:
    tz = config.event.timezone
    sessions = []
    for s in config.sessions:
        start, end = s.start.astimezone(tz), s.end.astimezone(tz)
        sessions.append(Part(s.id, "session", s.title, start, end, f"{start:%H:%M}–{end:%H:%M}",
                             list(s.speakers), s.description, notes.get(s.id, ""),
                             label=s.label, key=s.key))  # fmt: skip
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
        archive = Archive(media_folder(config))
        posts = {r.id: _post(r, tz, day, redactor, archive)
                 for r in posts_by_id(conn, data.scan.wanted())}  # fmt: skip
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
        overview=_overview(config, data, sessions), parts=parts, audience=config.report_audience,
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
        sources=data.sources, quality=quality_lines(data.sources, data.hidden, data.untagged),
    )  # fmt: skip
