"""The Post record every connector yields, the Connector protocol with the spec a connector is
made from, and the one error type."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from aggregator.errors import AggregatorError
from connectors.values import brief, in_window, storable

__all__ = [
    "Connector",
    "ConnectorError",
    "Page",
    "Post",
    "Quarantined",
    "SourceSpec",
    "each_isolated",
    "isolate",
    "parse_time",
    "reason",
]

log = logging.getLogger(__name__)
Unit = TypeVar("Unit")
Settings = TypeVar("Settings")


class ConnectorError(AggregatorError):
    """A source failed. The message is one line a comms officer can act on."""


@dataclass
class Post:
    """One post, flattened. `id` is unique within `platform`; times are aware UTC.

    The one definition of a post's fields: storage/models.py builds the `post` table from them.
    Each field is a column of its own name and type (text, a whole number, a time; a list or a
    dict as JSON; nullable when it may be None) unless its metadata says otherwise: `column`
    names the column, `long_text` makes it text of any length, and `stored=False` keeps the
    field out of the table (a sighting's `via` and `local_id`; `deleted` becomes `deleted_at`).
    """

    platform: str
    id: str = field(metadata={"column": "post_id"})
    created_at: datetime
    author: str
    text: str = field(metadata={"long_text": True})
    url: str | None = None
    author_name: str | None = None
    reply_to: str | None = None
    repost_of: str | None = None
    quote_of: str | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    quotes: int | None = None
    lang: str | None = None
    hashtags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    media: list[dict[str, Any]] = field(default_factory=list)  # {url, type, alt}
    # the platform's HTML content, sanitised again before display
    html: str | None = field(default=None, metadata={"long_text": True})
    edited_at: datetime | None = None
    deleted: bool = field(default=False, metadata={"stored": False})
    # where this sighting came from (instance, hashtag, file)
    via: str | None = field(default=None, metadata={"stored": False})
    raw: dict[str, Any] = field(default_factory=dict)
    # Mastodon: the status id on the instance it was fetched from (`id` is the global uri), and
    # for a reply_to that is such a local id (not a uri), the instance it is local to.
    local_id: str | None = field(default=None, metadata={"stored": False})
    reply_to_via: str | None = None


@dataclass(frozen=True)
class Quarantined:
    """A record that could not become a stored post: where it was (a line, an id), why, and the
    record itself, kept for inspection (`quarantine` table) instead of being lost or losing others."""

    where: str  # "line 12", "status 1097…", "feed https://… entry 3"
    reason: str  # one line
    raw: Any = None  # the record as received (JSON-able), or None when it could not be read

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class Page:
    """One batch a connector yields. Its posts and `cursor` are saved in one transaction."""

    posts: list[Post]
    cursor: dict[str, Any] | None = None  # the state to resume from after this page
    rejected: list[str] = field(default_factory=list)  # records skipped, each with its reason
    warnings: list[str] = field(default_factory=list)  # e.g. a gap the source cannot reach back to
    waits: int = 0  # rate-limit waits spent fetching this page
    quarantined: list[Quarantined] = field(default_factory=list)  # the skipped records themselves

    def reject(self, where: str, reason: str, raw: Any = None) -> None:
        """Skip one record: its reason joins `rejected`, the record itself `quarantined` (as
        plain JSON: a value JSON cannot hold, such as NaN, is kept as its repr)."""
        item = Quarantined(where, reason, _plain(raw))
        self.rejected.append(str(item))
        self.quarantined.append(item)


@dataclass(frozen=True)
class SourceSpec(Generic[Settings]):
    """What a connector is told of its source: its name, its settings as its type parsed them when
    the config loaded (`connectors.settings`: valid, never checked again), the hashtags it collects
    (its own, else the event's: no '#', each once) and, for an archive, its file."""

    name: str
    settings: Settings
    hashtags: tuple[str, ...] = ()
    path: Path | None = None  # archives: resolved against the config's folder


class Connector(Protocol):
    """A source of posts, made as `Type(spec, **context)` (`connectors.build_connector`).

    `spec` is its `SourceSpec`. `context` is what the run lends every connector, each taking what
    it uses: `http`, the run's one `connectors.http.HttpClient` (live sources: its owner closes
    it); `env`, where credentials are read (default os.environ); `clock`, epoch seconds (default
    time.time). Making one does no I/O; a credential missing from `env` is a ConnectorError.

    `fetch(cursor)` yields Pages in the order they must be saved, starting from the cursor the
    last saved Page carried (None on the first run). It never touches the database.

    :raises ConnectorError: when the source cannot be read; pages already yielded stay saved.
    """

    name: str

    def __init__(self, spec: SourceSpec[Any], **context: Any) -> None: ...

    def fetch(self, cursor: Mapping[str, Any] | None) -> Iterator[Page]: ...


def parse_time(value: Any, what: str = "date-time") -> datetime:
    """ISO 8601 with `Z` or an offset -> aware UTC datetime. Naive values are taken as UTC.

    :raises ValueError: naming `what` when the value is not an ISO 8601 string, or is a date
        outside the years 1970 to 2099 (a broken clock, or past what a datetime holds in UTC).
    """
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"{what} {brief(value)} is not ISO 8601") from None
    return in_window(parsed, what, value)


def each_isolated(
    source: str, units: Iterable[Unit], pages: Callable[[Unit], Iterator[Page]]
) -> Iterator[Page]:
    """The pages of every unit (an instance, a feed URL) in turn. A unit that fails does not stop
    the others: its error is kept, and all of them are raised together, in one line, at the end.

    :raises ConnectorError: naming every unit that failed, after the others' pages were yielded.
    """
    failures: list[str] = []
    for unit in units:
        try:
            yield from pages(unit)
        except ConnectorError as exc:
            # INFO: the error raised at the end carries it to the run's one failure line
            log.info("source %r: %s", source, exc)
            failures.append(str(exc))
    if failures:
        raise ConnectorError(f"source {source!r}: " + "; ".join(failures))


Item = TypeVar("Item")


def isolate(
    items: Iterable[Item],
    parse: Callable[[Item], Post | None],
    where: Callable[[int, Item], str],
    page: Page,
) -> list[Post]:
    """Parse each record on its own: one that raises, or whose post storage could not hold
    (`storable`), is quarantined on `page` (with `where` it was and why) and never costs the
    others. `parse` may return None for a record to skip quietly. KeyboardInterrupt and
    SystemExit are not caught: they stop the run, not a record."""
    posts: list[Post] = []
    for n, item in enumerate(items):
        try:
            post = parse(item)
            if post is not None:
                posts.append(storable(post))
        except Exception as exc:  # any bad value in one record: that record only
            page.reject(where(n, item), reason(exc), item)
    return posts


def reason(exc: BaseException) -> str:
    """Why a record was skipped, in one line of at most 300 characters."""
    if isinstance(exc, KeyError) and exc.args:
        return f"missing {brief(exc.args[0]).strip(chr(39))}"
    text = " ".join(str(exc).split())[:300]
    return (
        text
        if isinstance(exc, ValueError) and text
        else f"{type(exc).__name__}: {text}".rstrip(": ")
    )


def _plain(raw: Any) -> Any:
    try:
        json.dumps(raw, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return brief(raw, 100_000)
    return raw
