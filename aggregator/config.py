"""config.toml -> a validated, frozen Config. Secrets never live here: only env var *names*."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from aggregator.alerts import AlertSettings

__all__ = [
    "SOURCE_TYPES",
    "Config",
    "ConfigError",
    "EventConfig",
    "PrivacyConfig",
    "SessionConfig",
    "SourceConfig",
    "load_config",
    "resolve_config_path",
]

SOURCE_TYPES = ("jsonl", "mastodon", "bluesky", "x", "feed", "twarc", "tags")
ARCHIVE_TYPES = ("jsonl", "twarc", "tags")
DEFAULT_CONFIG = "config.toml"
AUDIENCES = ("organisers", "public")  # [report] audience: who the story is written for


# How hard a live source retries (connectors/http.py maps them onto its HTTP client).
RETRY_OPTIONS = ("max_attempts", "backoff_seconds", "max_wait_seconds")


def retry_option_problem(key: str, value: Any) -> str | None:
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


class ConfigError(Exception):
    """The config is unusable; `problems` lists every bad field as 'path: what is wrong'."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


@dataclass(frozen=True)
class SessionConfig:
    id: str
    title: str
    start: datetime  # aware
    end: datetime  # aware
    description: str = ""
    speakers: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    label: str = ""  # how the programme names it ("Session 1", "Opening panel"); default by order
    # The speakers' own accounts, as `account_key` writes them: quoted first, never the audience.
    speaker_accounts: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A few characters for a chart band: the label's number ('Session 5' -> '5'), else its
        initials ('Opening panel' -> 'OP')."""
        words = self.label.split()
        if words and words[-1].isdigit():
            return words[-1]
        return "".join(w[0] for w in words if w[0].isalnum())[:3].upper()


@dataclass(frozen=True)
class SourceConfig:
    name: str
    type: str
    enabled: bool
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    path: Path | None = None  # archives only, resolved against the config folder

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


MiB = 1024 * 1024
MEDIA_KEYS = {"archive", "max_image_bytes", "max_images_per_run", "max_total_bytes"}


@dataclass(frozen=True)
class MediaSettings:
    archive: bool = False
    max_image_bytes: int = 8 * MiB  # an image larger than this is not downloaded
    max_images_per_run: int = 100  # images fetched (or tried) in one run; the rest wait
    max_total_bytes: int = 100 * MiB  # the archive's thumbnails together


def read_media_settings(tbl: Any) -> tuple[MediaSettings | None, list[str]]:
    """[media] -> settings (None when the table is absent) and every problem as 'media.key: ...'."""
    if tbl is None:
        return None, []
    if not isinstance(tbl, Mapping):
        return None, ["media: must be a table, e.g. [media]"]
    problems = [
        f"media.{k}: unknown key (use one of {', '.join(sorted(MEDIA_KEYS))})"
        for k in tbl
        if k not in MEDIA_KEYS
    ]
    archive = tbl.get("archive", False)
    if not isinstance(archive, bool):
        problems.append("media.archive: must be true or false")
        archive = False
    numbers = {}
    for key in sorted(MEDIA_KEYS - {"archive"}):
        value = tbl.get(key, getattr(MediaSettings, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"media.{key}: must be a whole number, 1 or more (got {value!r})")
            value = getattr(MediaSettings, key)
        numbers[key] = value
    return MediaSettings(archive=archive, **numbers), problems


@dataclass(frozen=True)
class PrivacyConfig:
    opt_out: tuple[str, ...] = ()  # accounts as in `author`: lower case, without a leading @
    # Safeguarding (docs/privacy.md): personal identifiers redacted in the story and exports;
    # an organisation's own e-mail domains and postcodes are published contacts, never redacted.
    redact_identifiers: bool = True
    organisation_domains: tuple[str, ...] = ()
    organisation_postcodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventConfig:
    name: str
    timezone: ZoneInfo
    hashtags: tuple[str, ...]
    grace_minutes: int = 0
    # The organisers' accounts, as `account_key` writes them: their posts are not the audience's.
    organiser_accounts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    path: Path
    event: EventConfig
    database_url: str
    report_output: Path
    schedule_cron: str
    sessions: tuple[SessionConfig, ...]
    sources: tuple[SourceConfig, ...]
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # [tagging] curation: the organisers' corrections (docs/curation.md)
    curation: Path | None = None
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    misfire_grace_minutes: int = 60  # [schedule]: a run missed by less than this is caught up
    alerts: AlertSettings | None = None  # [alerts]: who to tell when the nightly job goes wrong
    media: MediaSettings | None = None  # [media]: archiving posts' images (aggregator/media.py)
    report_audience: str = "organisers"  # [report] audience: "public" drops the organisers' boxes
    report_technical: bool = True  # [report] technical: the organisers' list of technical problems

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def source(self, name: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.name == name), None)

    def session(self, session_id: str) -> SessionConfig | None:
        return next((s for s in self.sessions if s.id == session_id), None)


def resolve_config_path(cli_value: str | None, env: Mapping[str, str] | None = None) -> Path:
    """--config wins, then AGGREGATOR_CONFIG, then ./config.toml."""
    env = os.environ if env is None else env
    return Path(cli_value or env.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG)


def load_config(path: Path | str) -> Config:
    """Read and validate; raise ConfigError naming every bad field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            path,
            ["no config file here (pass --config PATH or set AGGREGATOR_CONFIG)"],
        )
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return _Validator(path.resolve(), data).build()


class _Validator:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.base = path.parent
        self.data = data
        self.problems: list[str] = []

    def bad(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def table(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            self.bad(key, "must be a table, e.g. [" + key + "]")
            return {}
        return value

    def string(
        self, tbl: Mapping[str, Any], where: str, key: str, default: str | None = None
    ) -> str:
        value = tbl.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.bad(f"{where}.{key}", "is required and must be a non-empty string")
            return ""
        return value

    def optional_string(self, tbl: Mapping[str, Any], where: str, key: str) -> str:
        value = tbl.get(key, "")
        if not isinstance(value, str):
            self.bad(f"{where}.{key}", "must be a string")
            return ""
        return value.strip()

    def strings(self, tbl: Mapping[str, Any], where: str, key: str) -> tuple[str, ...]:
        value = tbl.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.bad(f"{where}.{key}", "must be a list of strings")
            return ()
        return tuple(v.strip() for v in value if v.strip())

    def build(self) -> Config:
        event = self.event()
        storage = self.table("storage")
        report = self.table("report")
        schedule = self.table("schedule")
        database_url = self.database_url(
            self.string(storage, "storage", "database", "data/aggregator.db")
        )
        output = self.string(report, "report", "output", "site")
        audience = report.get("audience", "organisers")
        if audience not in AUDIENCES:
            self.bad("report.audience", f'must be "organisers" or "public" (got {audience!r})')
        technical = report.get("technical", True)
        if not isinstance(technical, bool):
            self.bad("report.technical", f"must be true or false (got {technical!r})")
        media, media_problems = read_media_settings(self.data.get("media"))
        self.problems += media_problems
        cron = self.string(schedule, "schedule", "cron", "0 2 * * *")
        if cron:
            from aggregator.scheduler import cron_problem

            problem = cron_problem(cron, event.timezone if event else ZoneInfo("UTC"))
            if problem:
                self.bad("schedule.cron", problem)
        grace = schedule.get("misfire_grace_minutes", 60)
        if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
            self.bad(
                "schedule.misfire_grace_minutes", "must be a whole number of minutes, 0 or more"
            )
            grace = 60
        from aggregator.alerts import read_alert_settings

        alerts, alert_problems = read_alert_settings(self.data.get("alerts"))
        self.problems += alert_problems
        sessions = self.sessions(event.timezone if event else ZoneInfo("UTC"))
        sources = self.sources(event)
        curation = self.curation()
        privacy = self.privacy()
        if self.problems or event is None:
            raise ConfigError(self.path, self.problems)
        return Config(
            path=self.path,
            event=event,
            database_url=database_url,
            report_output=self.base / output,
            schedule_cron=cron,
            sessions=sessions,
            sources=sources,
            raw=MappingProxyType(self.data),
            privacy=privacy,
            curation=curation,
            misfire_grace_minutes=grace,
            alerts=alerts,
            media=media,
            report_audience=audience,
            report_technical=technical is not False,
        )

    def curation(self) -> Path | None:
        """[tagging] curation: optional, but a file named and missing is an error."""
        tbl = self.table("tagging")
        if "curation" not in tbl:
            return None
        value = self.string(tbl, "tagging", "curation")
        path = (self.base / value).resolve() if value else None
        if path is not None and not path.is_file():
            self.bad("tagging.curation", f"file not found: {path} (create it or remove the key)")
        return path

    def database_url(self, value: str) -> str:
        if "://" in value:
            backend = value.split("://", 1)[0].split("+", 1)[0]
            if backend not in ("sqlite", "postgresql"):
                self.bad(
                    "storage.database",
                    f"{backend!r} is not supported: use a SQLite file (a path) or a "
                    "postgresql+psycopg://user@host/db URL",
                )
            return value
        return f"sqlite:///{(self.base / value).resolve()}"

    def event(self) -> EventConfig | None:
        if "event" not in self.data:
            self.bad("event", "missing: add an [event] table with name, timezone and hashtags")
        tbl = self.table("event")
        name = self.string(tbl, "event", "name")
        tz_name = self.string(tbl, "event", "timezone", "UTC")
        tz: ZoneInfo | None = None
        try:
            tz = ZoneInfo(tz_name) if tz_name else None
        except (ZoneInfoNotFoundError, ValueError):
            self.bad(
                "event.timezone",
                f"unknown time zone {tz_name!r} (use an IANA name such as 'Europe/London')",
            )
        hashtags = tuple(h.lstrip("#＃") for h in self.strings(tbl, "event", "hashtags"))
        if not hashtags:
            self.bad("event.hashtags", 'list at least one hashtag, e.g. hashtags = ["CoPro16"]')
        grace = tbl.get("grace_minutes", 0)
        if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
            self.bad("event.grace_minutes", "must be a whole number of minutes, 0 or more")
            grace = 0
        organisers = self.accounts(tbl, "event", "organiser_accounts")
        if tz is None:
            return None
        return EventConfig(name=name, timezone=tz, hashtags=hashtags, grace_minutes=grace,
                           organiser_accounts=organisers)  # fmt: skip

    def when(self, value: Any, where: str, tz: ZoneInfo) -> datetime | None:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                self.bad(where, f"{value!r} is not a date-time like 2016-11-28T12:00")
                return None
        else:
            self.bad(where, "is required: a date-time like 2016-11-28T12:00")
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)

    def sessions(self, tz: ZoneInfo) -> tuple[SessionConfig, ...]:
        raw = self.data.get("sessions", [])
        if not isinstance(raw, list) or not raw:
            self.bad("sessions", "add at least one [[sessions]] table")
            return ()
        seen: set[str] = set()
        out: list[SessionConfig] = []
        for i, tbl in enumerate(raw):
            where = f"sessions[{i}]"
            sid = self.string(tbl, where, "id")
            if sid in seen:
                self.bad(f"{where}.id", f"duplicate session id {sid!r}")
            seen.add(sid)
            start = self.when(tbl.get("start"), f"{where}.start", tz)
            end = self.when(tbl.get("end"), f"{where}.end", tz)
            if start and end and end <= start:
                self.bad(f"{where}.end", f"{tbl.get('end')} is not after start {tbl.get('start')}")
            title = self.string(tbl, where, "title")
            description = tbl.get("description", "")
            if not isinstance(description, str):
                self.bad(f"{where}.description", "must be a string")
                description = ""
            if start and end:
                out.append(
                    SessionConfig(
                        id=sid,
                        title=title,
                        start=start,
                        end=end,
                        description=description.strip(),
                        speakers=self.strings(tbl, where, "speakers"),
                        keywords=self.strings(tbl, where, "keywords"),
                        hashtags=tuple(
                            h.lstrip("#＃") for h in self.strings(tbl, where, "hashtags")
                        ),
                        handles=tuple(h.lstrip("@") for h in self.strings(tbl, where, "handles")),
                        label=self.optional_string(tbl, where, "label"),
                        speaker_accounts=self.accounts(tbl, where, "speaker_accounts"),
                    )
                )
        ordered = sorted(out, key=lambda s: s.start)
        ordered = [
            s if s.label else replace(s, label=f"Session {n}") for n, s in enumerate(ordered, 1)
        ]
        for a, b in pairwise(ordered):
            if b.start < a.end:
                self.bad(
                    "sessions", f"{a.id!r} and {b.id!r} overlap ({b.id} starts before {a.id} ends)"
                )
        return tuple(ordered)

    def sources(self, event: EventConfig | None) -> tuple[SourceConfig, ...]:
        raw = self.data.get("sources", [])
        if not isinstance(raw, list):
            self.bad("sources", "must be [[sources]] tables")
            return ()
        seen: set[str] = set()
        out: list[SourceConfig] = []
        for i, tbl in enumerate(raw):
            where = f"sources[{i}]"
            name = self.string(tbl, where, "name")
            if name in seen:
                self.bad(f"{where}.name", f"duplicate source name {name!r}")
            seen.add(name)
            stype = tbl.get("type")
            if stype not in SOURCE_TYPES:
                self.bad(
                    f"{where}.type", f"unknown type {stype!r}; use one of {', '.join(SOURCE_TYPES)}"
                )
                continue
            enabled = tbl.get("enabled", True)
            if not isinstance(enabled, bool):
                self.bad(f"{where}.enabled", "must be true or false")
            options = {k: v for k, v in tbl.items() if k not in ("name", "type", "enabled")}
            if "hashtags" in options:
                options["hashtags"] = [
                    h.lstrip("#＃") for h in self.strings(tbl, where, "hashtags")
                ]
            elif event:
                options["hashtags"] = list(event.hashtags)
            path = self.source_path(tbl, where, stype, bool(enabled))
            self.source_urls(tbl, where, stype)
            for key in RETRY_OPTIONS:
                problem = retry_option_problem(key, tbl.get(key))
                if problem and stype not in ARCHIVE_TYPES:
                    self.bad(f"{where}.{key}", problem)
            out.append(
                SourceConfig(
                    name=name,
                    type=stype,
                    enabled=bool(enabled),
                    options=MappingProxyType(options),
                    path=path,
                )
            )
        return tuple(out)

    def source_path(
        self, tbl: Mapping[str, Any], where: str, stype: str, enabled: bool
    ) -> Path | None:
        if stype not in ARCHIVE_TYPES:
            return None
        value = self.string(tbl, where, "path")
        if not value:
            return None
        path = (self.base / value).resolve()
        if enabled and not path.is_file():
            self.bad(f"{where}.path", f"file not found: {path}")
        return path

    def accounts(self, tbl: Mapping[str, Any], where: str, key: str) -> tuple[str, ...]:
        """A list of accounts, each as `account_key` compares them (lower case, no leading @)."""
        accounts = self.strings(tbl, where, key)
        for i, account in enumerate(accounts):
            if any(c.isspace() for c in account) or not account.lstrip("@＠"):
                self.bad(
                    f"{where}.{key}[{i}]",
                    f"{account!r} is not an account (e.g. user@example.org)",
                )
        return tuple(dict.fromkeys(a.lstrip("@＠").lower() for a in accounts if a.lstrip("@＠")))

    def privacy(self) -> PrivacyConfig:
        table = self.table("privacy")
        keys = self.accounts(table, "privacy", "opt_out")
        redact = table.get("redact_identifiers", True)
        if not isinstance(redact, bool):
            self.bad("privacy.redact_identifiers", f"must be true or false (got {redact!r})")
        domains = self.strings(table, "privacy", "organisation_domains")
        for i, domain in enumerate(domains):
            if "." not in domain or any(c.isspace() or c in "/:" for c in domain):
                self.bad(f"privacy.organisation_domains[{i}]",
                         f"{domain!r} is not a domain (e.g. nhs.net)")  # fmt: skip
        return PrivacyConfig(
            opt_out=keys,
            redact_identifiers=redact is not False,
            organisation_domains=tuple(d.lower().lstrip("@.") for d in domains),
            organisation_postcodes=self.strings(table, "privacy", "organisation_postcodes"),
        )

    def source_urls(self, tbl: Mapping[str, Any], where: str, stype: str) -> None:
        keys = {"mastodon": "instance", "feed": "url"}
        key = keys.get(stype)
        if key is None:
            return
        values = tbl.get(key)
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values:
            self.bad(f"{where}.{key}", "is required: an http(s) URL")
            return
        for value in values:
            parsed = urlparse(value) if isinstance(value, str) else None
            if not parsed or parsed.scheme not in ("http", "https") or not parsed.netloc:
                self.bad(f"{where}.{key}", f"{value!r} is not an http(s) URL")
