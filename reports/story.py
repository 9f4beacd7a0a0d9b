"""Database -> Story: an overview, each session in programme order, and the posts before and after.

The assembler: reports/digest.py reads the numbers and applies the editorial rules as it streams,
reports/keypoints.py finds what was said, reports/themes.py and reports/narrative.py turn the rest
into themes and paragraphs, and reports/review.py lists every candidate for the organisers. The
Story's dataclasses (reports/model.py) are re-exported here. docs/report.md says what each rule is.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy.engine import Engine

from aggregator.clock import EventClock, as_utc, utcnow
from aggregator.curation import Curation
from aggregator.media import Archive, media_folder
from aggregator.privacy import Redactor, opt_out_redactor
from aggregator.safeguarding import PLACEHOLDERS, redact, scrubber_for
from aggregator.scrubber import account_key
from aggregator.settings import Config, SessionConfig
from reports.charts import Activity, spread, window
from reports.digest import PER_ACCOUNT, ReportData, Voices, posts_by_id, report_data, texts_by_id
from reports.editorial import Item, card_text
from reports.features import ALONE
from reports.keypoints import KeyPoint, key_points
from reports.lang import post_language
from reports.model import (
    Citation,
    Contributor,
    KeyPointView,
    MediaView,
    Overview,
    Part,
    PostView,
    Sentiment,
    SourceView,
    Story,
    Tally,
)
from reports.narrative import Facts, narrative, post_label, quality_lines, said, summary
from reports.text import clean_text, question_sentence, sanitise_html, shingles, surface_forms
from reports.themes import distinctive_terms, fold_names, programme_names
from storage.moderation import disagreements, moderated

__all__ = [
    "Contributor",
    "MediaView",
    "Overview",
    "Part",
    "PostView",
    "Sentiment",
    "Shown",
    "SourceView",
    "Story",
    "Tally",
    "Told",
    "build_story",
    "shown_post",
    "tell",
]

log = logging.getLogger(__name__)

SHOW = {
    "contributors": 6,
    "highlights": 6,
    "questions": 5,
    "actions": 5,
    "technical": 5,
    "links": 6,
    "media": 6,
    "themes": 6,
    "key_points": 3,  # at most; two when a part has little to say
    "cites": 5,  # posts linked from one key point
}
CARD = 280  # characters of a post a card or quote shows; a longer post is cut and linked whole
SIMILAR = 0.6  # Jaccard overlap of word pairs at which two posts say the same thing


class Shown:
    """What the story shows of post content, with identifiers redacted ([privacy]
    redact_identifiers) and opted-out people's names removed; counts what it removed per post,
    so a post shown twice (a card and a key point) is counted once."""

    def __init__(self, config: Config, opt_out: Redactor) -> None:
        scrubber = scrubber_for(config.privacy)
        self.allowlist = scrubber.allowlist if scrubber else None
        self.opt_out = opt_out
        self.found: dict[int | str, Counter[str]] = {}

    def name(self, author: str, value: str | None) -> str | None:
        """An account's display name, counted once per account wherever it is shown."""
        return self.text(f"name of {author}", value) if value else None

    def text(self, pk: int | str, value: str) -> str:
        """Post content as shown, counted as shown."""
        value = clean_text(self.opt_out.text(value))
        if self.allowlist is None:
            return value
        clean, counts = redact(value, self.allowlist)
        self.count(pk, counts)
        return clean

    def unseen(self, value: str) -> str:
        """Post content redacted as `text` does, not counted: it may never be shown."""
        value = clean_text(self.opt_out.text(value))
        return redact(value, self.allowlist)[0] if self.allowlist is not None else value

    def count(self, pk: int | str, counts: Counter[str]) -> None:
        if counts:
            self.found[pk] = self.found.get(pk, Counter()) | counts

    def placeholders(self, pk: int | str, shown: str) -> None:
        """Count the identifiers `unseen` removed from a text now shown (a key point's sentence)."""
        self.count(pk, Counter({k: shown.count(p) for k, p in PLACEHOLDERS.items()}))

    def unchanged(self, value: str) -> bool:
        """Whether a label (a theme, a link) shows nothing to redact."""
        if self.opt_out.text(value) != value:
            return False
        return self.allowlist is None or redact(value, self.allowlist)[0] == value

    def totals(self) -> dict[str, int]:
        return dict(sum(self.found.values(), Counter()))


def _date_label(sessions: tuple[SessionConfig, ...], clock: EventClock) -> str:
    if not sessions:
        return ""
    last = as_utc(sessions[-1].end) - timedelta(seconds=1)  # a session ending at midnight
    return clock.days(clock.day_of(sessions[0].start), clock.day_of(last))


def _post(
    row: Any, clock: EventClock, day: date | None, shown: Shown, archive: Archive
) -> PostView:
    """A post as shown: opted-out accounts and names it mentions removed (posts stored before
    that person opted out still carry them), identifiers redacted, cut for its card, with its
    language and archived images. Its HTML is shown only when nothing was cut or redacted."""
    fields = {**row._mapping, **(shown.opt_out.fields(row._mapping) if shown.opt_out else {})}
    url = fields["url"] if isinstance(fields["url"], str) else None
    whole = clean_text(fields["text"])
    redacted = shown.text(row.id, whole)
    text, cut = card_text(redacted, CARD)
    html = "" if cut or redacted != whole else shown.text(row.id, fields["html"] or "")
    language = post_language(text, row.lang)
    return PostView(
        platform=row.platform, post_id=row.post_id, url=url, author=clean_text(row.author),
        author_name=shown.name(row.author, row.author_name),
        created_at=clock.shown(row.created_at), when=clock.when(row.created_at, day), text=text,
        html=sanitise_html(html),
        likes=row.likes or 0, reposts=row.reposts or 0, replies=row.replies or 0,
        quotes=row.quotes or 0, pinned=bool(row.pinned),
        media=[_media(row.id, m, url, row.author, archive, shown) for m in fields["media"] or []
               if isinstance(m, dict)],
        lang=language.lang, dir=language.dir, cut=cut,
    )  # fmt: skip


def shown_post(row: Any, config: Config, shown: Shown, archive: Archive | None = None) -> PostView:
    """One post as the story shows it (redacted, sanitised, cut for its card): the live wall's
    cards (aggregator.web). `row`: the post's columns and `pinned`."""
    clock = EventClock(config.event.timezone)
    day = clock.day_of(config.sessions[0].start) if config.sessions else None
    return _post(row, clock, day, shown, archive or Archive(media_folder(config)))


def _media(
    pk: int, item: Mapping[str, Any], post_url: str | None, author: str, archive: Archive,
    shown: Shown,
) -> MediaView:  # fmt: skip
    alt = shown.text(pk, item.get("alt") or "").strip() or None
    url = item.get("url") if isinstance(item.get("url"), str) else None
    kind = str(item.get("type") or "image")
    thumb = archive.thumbnail(url)  # only ever an image: the archive keeps nothing else
    return MediaView(url, "image" if thumb else kind, alt, post_url, clean_text(author),
                     *((thumb.data_uri, thumb.width, thumb.height) if thumb else ()))  # fmt: skip


def _parts(config: Config, notes: Mapping[str, str], clock: EventClock) -> list[Part]:
    sessions = []
    for s in config.sessions:
        sessions.append(Part(s.id, "session", s.title, clock.shown(s.start), clock.shown(s.end),
                             clock.span(s.start, s.end), list(s.speakers), s.description,
                             notes.get(s.id, ""), label=s.label, key=s.key))  # fmt: skip
    return [
        Part("before", "before", "Before the event", None, None, note=notes.get("before", "")),
        *sessions,
        Part("after", "after", "After the event", None, None, note=notes.get("after", "")),
    ]


def percentages(counts: Iterable[int]) -> list[int]:
    """Whole percentages of `counts` that sum to 100 (largest remainder; ties to the first)."""
    counts = list(counts)
    total = sum(counts)
    if not total:
        return [0] * len(counts)
    exact = [100 * n / total for n in counts]
    out = [int(x) for x in exact]
    by_remainder = sorted(range(len(counts)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in by_remainder[: 100 - sum(out)]:
        out[i] += 1
    return out


def _most_common(counts: Counter[str]) -> list[tuple[str, int]]:
    """Links or hashtags, the most used first, ties in alphabetical order: never in the order
    they were first counted, which follows the order of a set (a post's links and hashtags), and
    so the hash seed."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _sentiment(positive: int, neutral: int, negative: int) -> Sentiment:
    return Sentiment(positive, neutral, negative, *percentages((positive, neutral, negative)))


def _peak_label(a: Activity | None, day: date | None, clock: EventClock) -> str:
    """The busiest time in words, naming the day whenever it is not the event's."""
    if not a or not a.peak:
        return ""
    if a.peak_unit == "day":
        return a.peak
    hour, minute = int(a.peak[:2]), int(a.peak[3:5])
    busy = {clock.day_of(a.bin_start(i)) for i, n in enumerate(a.counts) if n}
    times = [as_utc(a.start.replace(year=d.year, month=d.month, day=d.day, hour=hour,
                                    minute=minute)) for d in sorted(busy)]  # fmt: skip
    times = [t for t in times if 0 <= a.seconds(t) < a.seconds(a.end)]
    if not times:
        return a.peak
    at = max(times, key=lambda t: a.counts[int(a.seconds(t) // 60) // a.minutes])
    return a.peak if clock.day_of(at) == day else f"{a.peak} on {clock.day(at, year=False)}"


class _Picker:
    """Chooses each part's posts in programme order: no account more than PER_ACCOUNT times in a
    list, no near-duplicate in a list, and no highlight saying what an earlier part's did. `why`
    says, for the review page, why a candidate was left out (by the PostView's id())."""

    def __init__(self) -> None:
        self.highlighted: list[frozenset[str]] = []
        self.why: dict[int, str] = {}

    def pick(
        self, first: list[PostView], rest: Iterable[PostView], limit: int, across: bool = False
    ) -> list[PostView]:
        chosen = list(first)  # the organisers' pins: always shown
        seen = [shingles(p.text) for p in chosen]
        per_account = Counter(account_key(p.author) for p in chosen)
        earlier = self.highlighted if across else []
        for post in rest:
            sig = shingles(post.text)
            if len(chosen) >= max(limit, len(first)):
                self.why[id(post)] = f"below the {limit} shown"
            elif per_account[account_key(post.author)] >= PER_ACCOUNT:
                self.why[id(post)] = f"its account has {PER_ACCOUNT} in this list already"
            elif any(len(sig & s) >= SIMILAR * len(sig | s) for s in seen):
                self.why[id(post)] = "says what a post shown says"
            elif any(len(sig & s) >= SIMILAR * len(sig | s) for s in earlier):
                self.why[id(post)] = "says what an earlier part's highlight says"
            else:
                chosen.append(post)
                seen.append(sig)
                per_account[account_key(post.author)] += 1
        if across:
            self.highlighted += seen
        return chosen


def _fill(
    part: Part, data: ReportData, posts: Mapping[int, PostView], picker: _Picker, config: Config,
    shown: Shown, cited: set[int],
) -> None:  # fmt: skip
    """A part's counts, activity and the posts it shows, from the aggregates and the scan; a
    post its key points quote is not shown again as a highlight."""
    totals, scan = data.totals.get(part.id), data.scan
    if totals:
        part.posts, part.people = totals.posts, totals.people
        neutral = totals.posts - totals.positive - totals.negative
        part.sentiment = _sentiment(totals.positive, neutral, totals.negative)
    part.copies = scan.counts[(part.id, "copies")]
    part.originals = part.posts - part.copies
    minutes = data.minutes.get(part.id, {})
    session = config.session(part.id) if part.kind == "session" else None
    if session:
        part.activity = window(minutes, as_utc(session.start), as_utc(session.end), 24, data.tz)
    else:
        part.activity = spread(minutes, data.tz)
    listed = lambda kind: [posts[i] for i in scan.ranked(kind, part.id) if i in posts]  # noqa: E731
    pinned = [posts[i] for i in scan.pinned.get(part.id, []) if i in posts]
    best = [posts[i] for i in scan.ranked("best", part.id) if i in posts and i not in cited]
    part.highlights = picker.pick(pinned, best, SHOW["highlights"], across=True)
    for kind in ("questions", "actions"):
        setattr(part, kind, picker.pick([], listed(kind), SHOW[kind]))
        setattr(part, f"{kind}_total", scan.counts[(part.id, kind)])
    if config.report_technical:
        part.technical = picker.pick([], listed("technical"), SHOW["technical"])
        part.technical_total = scan.counts[(part.id, "technical")]
    media = [m for p in listed("media") for m in p.media]
    part.media, part.media_total = media[: SHOW["media"]], scan.counts[(part.id, "media")]
    links = [(u, n) for u, n in _most_common(scan.links[part.id]) if shown.unchanged(u)]
    part.links = [Tally(u, n) for u, n in links[: SHOW["links"]]]
    part.contributors = [Contributor(clean_text(a), shown.name(a, n), c)
                         for a, n, c in data.contributors.get(part.id, [])]  # fmt: skip


def _speakers(config: Config, part: Part) -> list[str]:
    """Names and handles whose quoted lines count most in a part's key points: its speakers',
    else every session's (an account also by its local part: '@helen' for helen@example.org)."""
    session = config.session(part.id)
    sessions = [session] if session else config.sessions
    accounts = [a for s in sessions for a in s.speaker_accounts]
    return [
        *(n for s in sessions for n in s.speakers),
        *accounts,
        *(a.split("@")[0] for a in accounts),
    ]


def _key_points(
    part: Part, turn: int, config: Config, sample: list[Any], shown: Shown, clock: EventClock,
    day: date | None,
) -> set[int]:  # fmt: skip
    """The part's key points, from its sample (the posts the scan kept: originals, never spam,
    low content, technical problems, questions, pledges or flagged disclosures), each attributed
    and citing the posts it stands for; the pks of the posts they quote."""
    if not sample:
        return set()
    rows = {r.id: r for r in sample}
    items = [Item(str(r.id), r.author, shown.unseen(r.text)) for r in sample]
    want = SHOW["key_points"] if len(items) >= 20 else 2
    found = key_points(items, want, speakers=_speakers(config, part), context=ALONE)
    for n, point in enumerate(found):
        source = rows[int(point.post_ids[0])]
        shown.placeholders(source.id, point.sentence)
        handle = f"@{source.author.lstrip('@＠').split('@')[0]}"
        author = shown.name(source.author, source.author_name) or clean_text(handle)
        speaker = point.speaker
        if (
            speaker and speaker.islower() and not speaker.startswith("@")
        ):  # a post all in lower case
            speaker = speaker.title()
        text = said(point.sentence, speaker, author, len(point.post_ids) - 1, turn + n)
        part.key_points.append(KeyPointView(
            text=text, sentence=point.sentence, speaker=speaker, author=author,
            posts=len(point.post_ids), cites=_cites(point, rows, clock, day),
        ))  # fmt: skip
    return {int(point.post_ids[0]) for point in found}


def _cites(
    point: KeyPoint, rows: Mapping[int, Any], clock: EventClock, day: date | None
) -> list[Citation]:
    """Links to the posts a key point stands for, its own first, with text saying whose and when."""
    out = []
    for pk in point.post_ids[: SHOW["cites"]]:
        row = rows[int(pk)]
        when = clock.when(row.created_at, day)
        url = row.url if isinstance(row.url, str) else None
        out.append(Citation(url, post_label(row.platform, row.author, row.author_name, when)))
    return out


def _facts(part: Part, sessions: list[Part], turn: int) -> Facts:
    counts = sorted(p.posts for p in sessions)
    busiest = len(sessions) >= 3 and part.posts == counts[-1] and counts.count(counts[-1]) == 1
    quiet = len(sessions) >= 3 and not busiest and part.posts <= 0.5 * median(counts)
    top = part.contributors[0] if part.contributors else None
    activity = part.activity
    s = part.sentiment
    return Facts(
        kind=part.kind, turn=turn, posts=part.posts, people=part.people, copies=part.copies,
        busiest=part.kind == "session" and busiest, quiet=part.kind == "session" and quiet,
        peak=part.peak_label or None, peak_unit=activity.peak_unit if activity else "minute",
        peak_count=activity.peak_count if activity else 0,
        later=activity.outside if activity and part.kind == "session" else 0,
        themes=[t.label for t in part.themes], questions=part.questions_total,
        question=next(filter(None, (question_sentence(p.text) for p in part.questions)), None),
        actions=part.actions_total, positive=s.positive_percent, negative=s.negative_percent,
        top_author=(top.name or top.author) if top else None, top_posts=top.posts if top else 0,
        points=[k.text for k in part.key_points],
    )  # fmt: skip


def _themes(
    parts: list[Part], data: ReportData, config: Config, texts: Iterable[str], shown: Shown
) -> None:
    """Each part's distinctive terms that two people or more used, programme names kept whole
    and written as the programme writes them; never a term that names someone who opted out or
    holds an identifier."""
    listed = [n for s in config.sessions for n in (*s.speakers, *s.keywords)]
    names = programme_names(listed, [s.description for s in config.sessions])
    forms = surface_forms([*(s.title for s in config.sessions), *(s.description for s in
                                                                   config.sessions), *texts],
                          listed)  # fmt: skip
    forms.update({key: written for key, (written, _) in names.items()})
    forms.update(data.scan.hashtag_forms)
    skip = [f"#{h.casefold()}" for h in config.event.hashtags]
    event = fold_names(data.scan.all_terms, names)
    for part in parts:
        counts = fold_names(data.scan.people_terms(part.id), names)
        found = distinctive_terms(counts, event, SHOW["themes"], skip=skip, names=names)
        labels = [(forms.get(t.term, t.term), t.count) for t in found]
        part.themes = [Tally(label, n) for label, n in labels if shown.unchanged(label)]


@dataclass
class Told:
    """A story and what went into it, for the organisers' review page."""

    story: Story
    data: ReportData
    posts: dict[int, PostView]
    rows: dict[int, Any]
    voices: Voices
    curation: Curation = field(default_factory=Curation)
    left_out: dict[int, str] = field(default_factory=dict)  # id(PostView) -> why not shown


def tell(engine: Engine, config: Config, curation: Curation | None = None) -> Told:
    """The story of every visible post (not deleted, not excluded by an organiser, not opted out,
    not muted), with the curation file's notes, mutes and roles, and the moderators' decisions
    (storage.moderation: where they and the file disagree, the file wins, with a warning)."""
    curation = curation or Curation()
    if not curation.decisions:
        for problem in disagreements(engine, curation):
            log.warning("%s", problem)
        curation = moderated(engine, curation)
    clock = EventClock(config.event.timezone)
    voices = Voices.of(config, curation.roles, curation.mutes, curation.asked)
    parts = _parts(config, curation.notes, clock)
    day = clock.day_of(config.sessions[0].start) if config.sessions else None
    with engine.connect() as conn:
        data = report_data(engine, conn, config, SHOW, voices)
        shown = Shown(config, opt_out_redactor(conn, config.privacy.opt_out))
        archive = Archive(media_folder(config))
        rows = {r.id: r for r in posts_by_id(conn, data.scan.wanted())}
        posts = {pk: _post(r, clock, day, shown, archive) for pk, r in rows.items()}
        samples = {p.id: texts_by_id(conn, data.scan.ranked("sample", p.id)) for p in parts}
    picker = _Picker()
    for turn, part in enumerate(parts):
        cited = _key_points(part, turn, config, samples[part.id], shown, clock, day)
        picker.why.update({id(posts[pk]): "quoted as a key point" for pk in cited if pk in posts})
        _fill(part, data, posts, picker, config, shown, cited)
        part.peak_label = _peak_label(part.activity, day, clock)
    _themes(parts, data, config, [p.text for p in posts.values()], shown)
    sessions = [p for p in parts if p.kind == "session"]
    for turn, part in enumerate(parts):
        facts = _facts(part, sessions, turn)
        part.summary, part.narrative = summary(facts), narrative(facts)
    story = Story(
        event=config.event.name, date_label=_date_label(config.sessions, clock),
        timezone=str(config.event.timezone), hashtags=list(config.event.hashtags),
        generated_at=clock.shown(utcnow()),
        overview=_overview(config, data, sessions, shown, day, clock), parts=parts,
        audience=config.report_audience,
    )  # fmt: skip
    return Told(story, data, posts, rows, voices, curation, picker.why)


def build_story(
    engine: Engine, config: Config, notes: Mapping[str, str] | None = None,
    curation: Curation | None = None,
) -> Story:  # fmt: skip
    """The story (see `tell`); `notes` are the organisers' own paragraphs by session id, or
    'before' / 'after', when no curation file brings them."""
    if notes is not None:
        curation = Curation(notes=dict(notes)) if curation is None else curation
    return tell(engine, config, curation).story


def _overview(
    config: Config, data: ReportData, sessions: list[Part], shown: Shown, day: date | None,
    clock: EventClock,
) -> Overview:  # fmt: skip
    """The whole event; its chart runs from the event-local hour before the first session to the
    hour after the last one ends."""
    every: Counter[datetime] = Counter()
    for minutes in data.minutes.values():
        every.update(minutes)
    if config.sessions:
        start = clock.hour_start(config.sessions[0].start) - timedelta(hours=1)
        end = clock.hour_start(config.sessions[-1].end + timedelta(minutes=59)) + timedelta(hours=1)
    else:
        start = end = utcnow().replace(second=0, microsecond=0)
    scan, ctx = data.scan, data.context
    hashtags = [Tally(scan.hashtag_forms.get(k, k), n) for k, n in _most_common(scan.hashtags)[:8]]
    links = [Tally(u, n) for u, n in _most_common(scan.all_links) if shown.unchanged(u)][:8]
    spam = sum(n for (_, kind), n in scan.counts.items() if kind == "spam"), len(ctx.spam_accounts)
    redacted = shown.totals()
    activity = window(every, start, end, 96, data.tz)
    return Overview(
        posts=sum(t.posts for t in data.totals.values()), people=data.people,
        sessions=len(sessions), platforms=[Tally(k, n) for k, n in data.platforms.most_common()],
        hashtags=hashtags, links=links,
        activity=activity, peak_label=_peak_label(activity, day, clock), sources=data.sources,
        quality=quality_lines(data.sources, data.hidden, data.untagged, spam, redacted,
                              clock=clock),
        redacted=redacted,
    )  # fmt: skip
