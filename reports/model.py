"""The story's shape: the dataclasses `build_story` fills and the templates and story.json read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from reports.charts import Activity

__all__ = [
    "Candidate",
    "Citation",
    "Contributor",
    "KeyPointView",
    "MediaView",
    "Overview",
    "Part",
    "PostView",
    "Review",
    "ReviewPart",
    "Sentiment",
    "SourceView",
    "Story",
    "Tally",
]


@dataclass
class MediaView:
    url: str | None
    type: str
    alt: str | None  # the author's description; None when they gave none
    post_url: str | None = None
    author: str = ""
    # the archived thumbnail (aggregator/media.py) as a data: URI; None when it is not archived
    thumbnail: str | None = None
    width: int | None = None  # the thumbnail's size in pixels
    height: int | None = None


@dataclass
class PostView:
    platform: str
    post_id: str
    url: str | None
    author: str
    author_name: str | None
    created_at: datetime  # event time zone
    when: str  # "13:25", or "Fri 25 Nov, 13:25" away from the event's first day
    text: str  # plain text without control or invisible characters; NOT escaped; cut for its card
    html: str  # the platform's HTML after the allowlist sanitiser; "" when it gave none or was cut
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    pinned: bool = False
    media: list[MediaView] = field(default_factory=list)
    lang: str = "en"  # BCP 47, from the source or detected (reports/lang.py); else the page's
    dir: str = "auto"  # rtl | ltr | auto (the language is the page's by default, not known)
    cut: bool = False  # `text` is the start of a longer post: the card links to the whole of it


@dataclass
class Citation:
    """A post a key point stands for: where it is, and link text saying whose and when."""

    url: str | None
    label: str  # "post by @alice at 13:25"


@dataclass
class KeyPointView:
    """One thing that was said, as the part's paragraph opens with it."""

    text: str  # the sentence as published: '“…,” says Helen Bevan.'; NOT escaped
    sentence: str  # the words said, as posted
    speaker: str | None  # who said it, for a quoted line; else None
    author: str  # who posted it (display name, else account)
    posts: int  # how many posts it stands for, its own included
    cites: list[Citation] = field(default_factory=list)  # its own post first, then a few like it


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
    # Whole percentages summing to 100 (largest remainder), computed once: every sentence and
    # chart that gives a share of the tone reads these.
    positive_percent: int = 0
    neutral_percent: int = 0
    negative_percent: int = 0


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
    originals: int = 0  # posts that are not copies: reposts and repeated texts count as reach
    copies: int = 0
    narrative: str = ""  # the paragraph as plain text: what was said, then the numbers
    summary: str = ""  # the paragraph's numbers, after its key points
    key_points: list[KeyPointView] = field(default_factory=list)
    themes: list[Tally] = field(default_factory=list)
    highlights: list[PostView] = field(default_factory=list)
    questions: list[PostView] = field(default_factory=list)
    questions_total: int = 0
    actions: list[PostView] = field(default_factory=list)
    actions_total: int = 0
    technical: list[PostView] = field(default_factory=list)  # problems with the broadcast
    technical_total: int = 0  # (organisers only: ORGANISER_ONLY in reports/render.py)
    links: list[Tally] = field(default_factory=list)
    media: list[MediaView] = field(default_factory=list)
    media_total: int = 0
    contributors: list[Contributor] = field(default_factory=list)
    sentiment: Sentiment = field(default_factory=Sentiment)
    activity: Activity | None = None
    label: str = ""  # sessions: as the programme names them ("Session 1", "Opening panel")
    key: str = ""  # sessions: the few characters drawn on the day chart's band
    peak_label: str = ""  # its busiest time in words, naming the day when not the event's


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
    redacted: dict[str, int] = field(default_factory=dict)  # identifiers removed, by kind
    peak_label: str = ""  # the busiest minute, with its day when not the event's first


@dataclass
class Story:
    event: str
    date_label: str
    timezone: str
    hashtags: list[str]
    generated_at: datetime
    overview: Overview
    parts: list[Part]  # before, every session in programme order, after
    audience: str = "organisers"  # [report] audience: "public" leaves out the organisers' boxes

    @property
    def sessions(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "session"]


@dataclass
class Candidate:
    """A post the story could show, on the organisers' review page: never published, so it may
    say what the story leaves unsaid (a flagged disclosure's reason, an account's role)."""

    post: PostView
    kind: str  # highlight | question | pledge | technical | disclosure
    shown: bool  # in the story as it stands
    why: str  # why it is (or is not) shown, in a few words; "" when nothing needs saying
    role: str | None  # the account's role: organiser, speaker, bot, or from its profile
    session: str  # the part it belongs to, for the line that moves it
    lines: dict[str, str] = field(default_factory=dict)  # action -> the curation entry to paste


@dataclass
class ReviewPart:
    id: str
    title: str
    label: str  # sessions: "Session 1"; "" for before and after
    candidates: dict[str, list[Candidate]]  # kind -> candidates, shown first
    totals: dict[str, int]  # kind -> how many posts there were in all


@dataclass
class Review:
    """The organisers' review page (`aggregator report --review`): every candidate of every part
    with the curation entry that pins, excludes, moves or mutes it, and the accounts the story
    treats apart."""

    event: str
    generated_at: datetime
    curation: str  # the curation file the lines go into, or "" when none is configured
    sessions: list[str]  # session ids a post can be moved to
    parts: list[ReviewPart]
    muted: list[tuple[str, str]]  # (account, note)
    spam: list[tuple[str, int, str, str]]  # (account, posts, why, the entry that mutes it)
    roles: list[tuple[str, str, str]]  # (account, role, where it is said)
