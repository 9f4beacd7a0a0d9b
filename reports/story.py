"""Database -> story context: the event, each session in programme order, general posts before/after."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from aggregator.config import Config, SessionConfig
from storage.queries import iter_posts

__all__ = ["PostView", "SessionStory", "Story", "build_story"]


@dataclass
class PostView:
    platform: str
    post_id: str
    author: str
    author_name: str | None
    created_at: datetime  # aware, event time zone
    text: str
    url: str | None
    likes: int
    reposts: int
    replies: int
    reason: str | None

    @property
    def time_label(self) -> str:
        return self.created_at.strftime("%H:%M")


@dataclass
class SessionStory:
    id: str
    title: str
    start: datetime
    end: datetime
    description: str = ""
    speakers: tuple[str, ...] = ()
    posts: list[PostView] = field(default_factory=list)

    @property
    def time_label(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    @property
    def people(self) -> int:
        return len({p.author for p in self.posts})


@dataclass
class Story:
    event: str
    timezone: str
    hashtags: tuple[str, ...]
    date: datetime | None
    generated_at: datetime
    sessions: list[SessionStory]
    before: SessionStory
    after: SessionStory
    platforms: dict[str, int]

    @property
    def total_posts(self) -> int:
        return sum(len(s.posts) for s in self.all_parts)

    @property
    def total_people(self) -> int:
        return len({p.author for s in self.all_parts for p in s.posts})

    @property
    def all_parts(self) -> list[SessionStory]:
        return [self.before, *self.sessions, self.after]


def _section(s: SessionConfig, tz: Any) -> SessionStory:
    return SessionStory(
        s.id, s.title, s.start.astimezone(tz), s.end.astimezone(tz), s.description, s.speakers
    )


def _view(row: Any, tz: Any) -> PostView:
    return PostView(
        platform=row.platform,
        post_id=row.post_id,
        author=row.author,
        author_name=row.author_name,
        created_at=row.created_at.astimezone(tz),
        text=row.text,
        url=row.url,
        likes=row.likes or 0,
        reposts=row.reposts or 0,
        replies=row.replies or 0,
        reason=row.reason,
    )


def build_story(engine: Engine, config: Config) -> Story:
    """Group every live post under its session (programme order); untagged ones before or after."""
    tz = config.event.timezone
    sections = {s.id: _section(s, tz) for s in config.sessions}
    first = min((s.start for s in config.sessions), default=None)
    last = max((s.end for s in config.sessions), default=None)
    before = SessionStory(
        "before", "Before the event", first or datetime.now(UTC), first or datetime.now(UTC)
    )
    after = SessionStory(
        "after", "After the event", last or datetime.now(UTC), last or datetime.now(UTC)
    )
    platforms: dict[str, int] = {}
    with engine.connect() as conn:
        for row in iter_posts(conn):
            post = _view(row, tz)
            platforms[post.platform] = platforms.get(post.platform, 0) + 1
            target = sections.get(row.session_id) if row.session_id else None
            if target is None:
                target = before if first and post.created_at < first else after
            target.posts.append(post)
    return Story(
        event=config.event.name,
        timezone=str(tz),
        hashtags=config.event.hashtags,
        date=first.astimezone(tz) if first else None,
        generated_at=datetime.now(UTC).astimezone(tz),
        sessions=[sections[s.id] for s in config.sessions],
        before=before,
        after=after,
        platforms=platforms,
    )
