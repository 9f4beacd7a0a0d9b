"""Each source type's own settings, read from its `[[sources]]` table when the config loads.

`parse_<type>(raw, timezone) -> (settings, problems)`: the frozen settings its connector reads, or
None and every problem as "key: what is wrong" (the loader names the source: `sources[2].filter`).
A connector is made from settings that passed, so nothing is checked twice. `timezone` is the
event's: a `since` date is read in it (`since_option`). Keys a type does not read are left alone,
as before; `name`, `type`, `enabled`, `hashtags` and `path` are every source's, read by the loader.

Light on purpose: the loader imports this module, so it imports no connector, HTTP or parsing
library (docs/connectors.md lists each type's settings).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast, get_args
from urllib.parse import urlsplit

__all__ = [
    "BlueskySettings",
    "FeedSettings",
    "FileSettings",
    "JetstreamSettings",
    "MastodonSettings",
    "Retry",
    "XSettings",
    "parse_bluesky",
    "parse_feed",
    "parse_file",
    "parse_jetstream",
    "parse_mastodon",
    "parse_x",
    "since_option",
]

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ENV_PROBLEM = (
    "name the environment variable that holds the secret (e.g. {}), never the secret itself"
)
MASTODON_TOKEN_ENV = "AGGREGATOR_MASTODON_TOKEN"  # noqa: S105 - the name suggested; none by default
HANDLE_ENV = "AGGREGATOR_BLUESKY_HANDLE"
PASSWORD_ENV = "AGGREGATOR_BLUESKY_APP_PASSWORD"  # noqa: S105 - a variable name, not a secret
X_TOKEN_ENV = "AGGREGATOR_X_BEARER_TOKEN"  # noqa: S105 - a variable name, not a secret
BLUESKY_SERVICE = "https://bsky.social"
X_API = "https://api.x.com/2"
JETSTREAM_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
FeedFilter = Literal["all", "hashtags"]
XEndpoint = Literal["recent", "all"]  # recent: the last 7 days; all: the full archive
Settings = TypeVar("Settings")


def since_option(value: Any, tz: tzinfo) -> datetime | None:
    """A start option (`since`, X's `start_time`) as an aware UTC instant, by one rule for every
    source (docs/connectors.md): a date is its midnight in the event's time zone `tz`, a date-time
    without an offset is in that zone, one with an offset (or Z) is that instant. None when unset.

    :raises ValueError: saying what a date looks like, when the value is not one.
    """
    if value is None or value == "":
        return None
    given = value
    try:
        if isinstance(value, str):
            text = value.strip()
            timed = "T" in text or " " in text
            value = datetime.fromisoformat(text) if timed else date.fromisoformat(text)
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, time(0))
        if not isinstance(value, datetime):
            raise ValueError(value)
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{given!r} is not a date like 2016-11-28 or a date-time like 2016-11-28T09:00"
        ) from None


@dataclass(frozen=True)
class Retry:
    """How hard a live source retries (`connectors.http.HttpClient.retrying`); None keeps the
    HTTP client's own value (5 attempts, 2 s backoff, 15 min longest rate-limit wait)."""

    max_attempts: int | None = None
    backoff_seconds: float | None = None
    max_wait_seconds: float | None = None


@dataclass(frozen=True)
class FileSettings:
    """A `jsonl`, `twarc` or `tags` source has no settings of its own: its file is the source's
    `path`, which the loader resolves against the config's folder."""


@dataclass(frozen=True)
class MastodonSettings:
    instances: tuple[str, ...]  # base URLs without a trailing slash, each once
    since: datetime | None = None  # how far back a first run pages (aware UTC)
    # one env var name for every instance, or {instance URL or host: env var name}
    token_env: str | Mapping[str, str] | None = None
    retry: Retry = Retry()


@dataclass(frozen=True)
class FeedSettings:
    urls: tuple[str, ...]  # http(s) only, each once
    filter: FeedFilter = "all"  # "hashtags": only entries that carry or mention them
    retry: Retry = Retry()


@dataclass(frozen=True)
class BlueskySettings:
    handle_env: str = HANDLE_ENV
    password_env: str = PASSWORD_ENV
    service: str = BLUESKY_SERVICE  # the PDS, without a trailing slash
    since: datetime | None = None
    retry: Retry = Retry()


@dataclass(frozen=True)
class XSettings:
    token_env: str = X_TOKEN_ENV
    endpoint: XEndpoint = "recent"
    query: str | None = None  # None: the source's hashtags OR'ed
    start_time: datetime | None = None
    # the API's base, without a trailing slash: another address serves a recording or a proxy,
    # and is sent the bearer token
    base_url: str = X_API
    retry: Retry = Retry()


@dataclass(frozen=True)
class JetstreamSettings:
    url: str = JETSTREAM_URL  # ws:// or wss://, the server's /subscribe endpoint
    compress: bool = False  # zstd frames (compress=true), read with `dictionary`
    dictionary: Path | None = None  # the server's zstd dictionary (the loader makes it absolute)
    max_batch: int = 500  # posts in one page at most
    batch_seconds: float = 1.0  # a page at least this often while events come
    rewind_seconds: float = 5.0  # a resume asks for the events from this long before the cursor
    gap_tolerance_seconds: float = 60.0  # a resume starting later than this past the cursor: gap
    max_backoff_seconds: float = 60.0  # the longest wait between reconnections
    max_attempts: int = 5  # failed connections in a row that end a catch-up (live: never ends)


@dataclass
class _Table:
    """One `[[sources]]` table being read: each value checked, every problem kept."""

    raw: Mapping[str, Any]
    problems: list[str] = field(default_factory=list)

    def bad(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def result(self, settings: Settings) -> tuple[Settings | None, list[str]]:
        return (None, self.problems) if self.problems else (settings, [])

    def urls(self, key: str, example: str, hint: str = "") -> tuple[str, ...]:
        """One http(s) URL or a list of them, each once."""
        value = self.raw.get(key)
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values:
            self.bad(
                key, f'is required: an http(s) URL or a list of them, e.g. {key} = "{example}"'
            )
            return ()
        good = [v.strip() for v in values if self._is_url(key, v, hint)]
        return tuple(dict.fromkeys(good))

    def url(self, key: str, default: str) -> str:
        """One http(s) URL, without a trailing slash."""
        value = self.raw.get(key, default)
        return value.strip().rstrip("/") if self._is_url(key, value) else default

    def _is_url(self, key: str, value: Any, hint: str = "") -> bool:
        parts = urlsplit(value.strip()) if isinstance(value, str) else None
        if not parts or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            self.bad(key, f"{value!r} is not an http(s) URL{hint}")
            return False
        return True

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw.get(key) or default
        if value not in choices:
            quoted = " or ".join(f'"{c}"' for c in choices)
            self.bad(key, f"must be {quoted} (got {value!r})")
            return default
        return str(value)

    def text(self, key: str) -> str | None:
        """An optional string; a blank one is unset."""
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            self.bad(key, f"must be a string (got {value!r})")
            return None
        return (value or "").strip() or None

    def env_name(self, key: str, default: str) -> str:
        value = self.raw.get(key, default)
        if not _is_env_name(value):
            self.bad(key, ENV_PROBLEM.format(default))
            return default
        return str(value)

    def since(self, key: str, tz: tzinfo) -> datetime | None:
        try:
            return since_option(self.raw.get(key), tz)
        except ValueError as exc:
            self.bad(key, str(exc))
            return None

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            self.bad(key, f"must be true or false (got {value!r})")
            return default
        return value

    def number(self, key: str, default: float, least: float, whole: bool = False) -> Any:
        """A number of at least `least` (a whole one with `whole`), or the default when unset."""
        value = self.raw.get(key, default)
        kinds = int if whole else int | float
        if not isinstance(value, kinds) or isinstance(value, bool) or not value >= least:
            what = "a whole number" if whole else "a number"
            self.bad(key, f"must be {what} of at least {least:g} (got {value!r})")
            return default
        return value

    def retry(self) -> Retry:
        values = {}
        for key in ("max_attempts", "backoff_seconds", "max_wait_seconds"):
            value = self.raw.get(key)
            if (problem := _retry_problem(key, value)) is not None:
                self.bad(key, problem)
            else:
                values[key] = value
        return Retry(**values)


def _is_env_name(value: Any) -> bool:
    return isinstance(value, str) and ENV_NAME.fullmatch(value) is not None


def _retry_problem(key: str, value: Any) -> str | None:
    """None if `value` is usable for retry option `key` (or unset), else what is wrong."""
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key == "max_attempts":
        ok = number and isinstance(value, int) and value >= 1
        return None if ok else f"must be a whole number of at least 1 (got {value!r})"
    return (
        None if number and value >= 0 else f"must be a number of seconds, 0 or more (got {value!r})"
    )


def parse_file(
    raw: Mapping[str, Any], timezone: tzinfo = UTC
) -> tuple[FileSettings | None, list[str]]:
    """A `jsonl`, `twarc` or `tags` source: nothing to read (its `path` is the loader's)."""
    return FileSettings(), []


def parse_mastodon(
    raw: Mapping[str, Any], timezone: tzinfo = UTC
) -> tuple[MastodonSettings | None, list[str]]:
    """`instance` (one base URL or a list), `since`, `token_env` (a name, or a table of them by
    instance) and the retry options."""
    table = _Table(raw)
    instances = (_base_url(u) for u in table.urls("instance", "https://mastodon.social"))
    settings = MastodonSettings(
        instances=tuple(dict.fromkeys(instances)),
        since=table.since("since", timezone),
        token_env=_token_env(table),
        retry=table.retry(),
    )
    return table.result(settings)


def _base_url(url: str) -> str:
    """An instance's base URL: scheme, host and path, without a trailing slash."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _token_env(table: _Table) -> str | Mapping[str, str] | None:
    value = table.raw.get("token_env")
    if value is None or _is_env_name(value):
        return value
    if isinstance(value, Mapping) and value:
        for instance, name in value.items():
            if not _is_env_name(name):
                table.bad(f"token_env[{instance!r}]", ENV_PROBLEM.format(MASTODON_TOKEN_ENV))
        return MappingProxyType({str(k): str(v) for k, v in value.items()})
    table.bad(
        "token_env",
        ENV_PROBLEM.format(MASTODON_TOKEN_ENV)
        + ' (or a table of them by instance: { "https://a.example" = "TOKEN_A" })',
    )
    return None


def parse_feed(
    raw: Mapping[str, Any], timezone: tzinfo = UTC
) -> tuple[FeedSettings | None, list[str]]:
    """`url` (one or a list, http and https only), `filter` and the retry options."""
    table = _Table(raw)
    hint = " (archives are read through path = ...)"
    settings = FeedSettings(
        urls=table.urls("url", "https://example.org/feed", hint),
        filter=cast(FeedFilter, table.choice("filter", get_args(FeedFilter), "all")),
        retry=table.retry(),
    )
    return table.result(settings)


def parse_bluesky(
    raw: Mapping[str, Any], timezone: tzinfo = UTC
) -> tuple[BlueskySettings | None, list[str]]:
    """`handle_env`, `password_env`, `service` (the PDS), `since` and the retry options."""
    table = _Table(raw)
    settings = BlueskySettings(
        handle_env=table.env_name("handle_env", HANDLE_ENV),
        password_env=table.env_name("password_env", PASSWORD_ENV),
        service=table.url("service", BLUESKY_SERVICE),
        since=table.since("since", timezone),
        retry=table.retry(),
    )
    return table.result(settings)


def parse_x(raw: Mapping[str, Any], timezone: tzinfo = UTC) -> tuple[XSettings | None, list[str]]:
    """`token_env`, `endpoint`, `query`, `start_time`, `base_url` and the retry options."""
    table = _Table(raw)
    settings = XSettings(
        token_env=table.env_name("token_env", X_TOKEN_ENV),
        endpoint=cast(XEndpoint, table.choice("endpoint", get_args(XEndpoint), "recent")),
        query=table.text("query"),
        start_time=table.since("start_time", timezone),
        base_url=table.url("base_url", X_API),
        retry=table.retry(),
    )
    return table.result(settings)


def parse_jetstream(
    raw: Mapping[str, Any], timezone: tzinfo = UTC
) -> tuple[JetstreamSettings | None, list[str]]:
    """`url` (ws:// or wss://), `compress` with its `dictionary` file, `max_batch`,
    `batch_seconds`, `rewind_seconds`, `gap_tolerance_seconds`, `max_backoff_seconds` and
    `max_attempts`."""
    table = _Table(raw)
    url = raw.get("url", JETSTREAM_URL)
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    if not parts or parts.scheme.lower() not in ("ws", "wss") or not parts.hostname:
        table.bad("url", f'{url!r} is not a ws:// or wss:// URL, e.g. url = "{JETSTREAM_URL}"')
        url = JETSTREAM_URL
    compress = table.flag("compress", False)
    settings = JetstreamSettings(
        url=url.strip(),
        compress=compress,
        dictionary=_dictionary(table, compress),
        max_batch=table.number("max_batch", 500, 1, whole=True),
        batch_seconds=table.number("batch_seconds", 1.0, 0.05),
        rewind_seconds=table.number("rewind_seconds", 5.0, 0),
        gap_tolerance_seconds=table.number("gap_tolerance_seconds", 60.0, 0),
        max_backoff_seconds=table.number("max_backoff_seconds", 60.0, 1),
        max_attempts=table.number("max_attempts", 5, 1, whole=True),
    )
    return table.result(settings)


def _dictionary(table: _Table, compress: bool) -> Path | None:
    """`dictionary`: the zstd dictionary's path, a file; required with compress. The config loader
    reads a relative path from the config's folder before this sees it."""
    value = table.text("dictionary")
    if value is None:
        if compress:
            table.bad("dictionary", "compress = true needs the server's zstd dictionary: "
                      "give its path, or set compress = false")  # fmt: skip
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        table.bad("dictionary", f"{value!r} is not an absolute path")
    elif not path.is_file():
        table.bad("dictionary", f"file not found: {path}")
    return path
