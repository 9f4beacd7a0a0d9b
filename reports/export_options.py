"""What an export is asked for: the command's options validated into ExportOptions (format, filters, key)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo

from aggregator.pseudonym import pseudonym_key
from aggregator.settings import Config
from storage.queries import PostFilter

__all__ = ["FORMATS", "GENERAL", "ExportOptions", "ExportUsage", "make_options", "parse_when"]

FORMATS = ("csv", "jsonl", "ids")
GENERAL = "general"  # --session value for posts outside every session


class ExportUsage(ValueError):
    """A bad export option: `param` names it, the message says how to fix it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ExportOptions:
    """One export: its format, which posts, the pseudonym key, and whether it is for Excel."""

    fmt: str = "csv"
    filters: PostFilter = field(default_factory=PostFilter)
    key: bytes | None = None  # pseudonymise when set
    excel: bool = False


def parse_when(value: str, tz: tzinfo, end: bool = False) -> datetime:
    """A date or date-time, in `tz` unless it carries an offset, as aware UTC. With `end`,
    a bare date means the end of that day."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date (2016-11-28) or date-time (2016-11-28T13:00, "
            "with an offset such as +01:00 or Z if it is not in the event's time zone)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        date.fromisoformat(text)
        is_date = True
    except ValueError:
        is_date = False
    return (parsed + timedelta(days=1) if end and is_date else parsed).astimezone(UTC)


def make_options(
    config: Config,
    fmt: str = "csv",
    sessions: Sequence[str] = (),
    platforms: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    hashtags: Sequence[str] = (),
    pseudonymise: bool = False,
    excel: bool = False,
    env: Mapping[str, str] | None = None,
) -> ExportOptions:
    """Validate the command's options into ExportOptions; ExportUsage or PrivacyError if wrong."""
    if excel and fmt != "csv":
        raise ExportUsage("--excel", "--excel applies to --format csv only")
    if pseudonymise and fmt == "ids":
        raise ExportUsage("--pseudonymise", "an ids export exists to look posts up again, "
                          "so it cannot be pseudonymised: use csv or jsonl")  # fmt: skip
    filters = PostFilter(
        sessions=_sessions(config, sessions),
        platforms=tuple(dict.fromkeys(platforms)),
        hashtags=tuple(dict.fromkeys(h.strip().lstrip("#＃").lower() for h in hashtags)),
    )
    tz = config.event.timezone
    try:
        filters = replace(filters, since=parse_when(since, tz) if since else None,
                          until=parse_when(until, tz, end=True) if until else None)  # fmt: skip
    except ValueError as exc:
        raise ExportUsage("--since/--until", str(exc)) from None
    if filters.since and filters.until and filters.since >= filters.until:
        raise ExportUsage("--since/--until", f"--since {since} is not before --until {until}")
    key = pseudonym_key(os.environ if env is None else env) if pseudonymise else None
    return ExportOptions(fmt=fmt, filters=filters, key=key, excel=excel)


def _sessions(config: Config, chosen: Sequence[str]) -> tuple[str | None, ...]:
    """Session ids as given; 'general' (unless a session has that id) as None: no session."""
    known = {s.id for s in config.sessions}
    for sid in chosen:
        if sid not in known and sid != GENERAL:
            raise ExportUsage("--session", f"no session {sid!r} (sessions: {', '.join(sorted(known))}, "
                              f"or {GENERAL!r} for posts outside every session)")  # fmt: skip
    return tuple(dict.fromkeys(None if s == GENERAL and s not in known else s for s in chosen))
