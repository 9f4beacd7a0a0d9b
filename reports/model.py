"""The story's shape: the dataclasses `build_story` fills and the templates and story.json read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from reports.charts import Activity

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
    text: str  # plain text without control or invisible characters; NOT escaped
    html: str  # the platform's HTML after the allowlist sanitiser; "" when it gave none
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    pinned: bool = False
    media: list[MediaView] = field(default_factory=list)
    lang: str = "en"  # BCP 47, from the source or detected (reports/lang.py); else the page's
    dir: str = "auto"  # rtl | ltr | auto (the language is the page's by default, not known)


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
    label: str = ""  # sessions: as the programme names them ("Session 1", "Opening panel")
    key: str = ""  # sessions: the few characters drawn on the day chart's band


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
    audience: str = "organisers"  # [report] audience: "public" leaves out the organisers' boxes

    @property
    def sessions(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "session"]
