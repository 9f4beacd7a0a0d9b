"""Loading a config: config.toml -> a validated, frozen `Config` (the types: aggregator.settings).

Every problem is found before anything runs and reported together as 'where: what is wrong'
(`ConfigError`, exit 2), each source's own settings included: the connector of its type parses
them (`connectors.parse_settings`). Loading imports no HTTP, database or scheduler library.
Secrets never live in a config: only the names of the environment variables that hold them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aggregator.cron import cron_problem
from aggregator.settings import (
    ARCHIVE_TYPES,
    AUDIENCES,
    SOURCE_TYPES,
    AlertSettings,
    CollectSettings,
    Config,
    ConfigError,
    EventConfig,
    LiveSettings,
    MediaSettings,
    PrivacyConfig,
    SessionConfig,
    SmtpSettings,
    SourceConfig,
    WorkerSettings,
)
from connectors import parse_settings

# The types are aggregator.settings'; they are named here too, for callers that load a config.
__all__ = [
    "ARCHIVE_TYPES",
    "AUDIENCES",
    "SOURCE_TYPES",
    "AlertSettings",
    "CollectSettings",
    "Config",
    "ConfigError",
    "EventConfig",
    "LiveSettings",
    "MediaSettings",
    "PrivacyConfig",
    "SessionConfig",
    "SmtpSettings",
    "SourceConfig",
    "WorkerSettings",
    "load_config",
    "resolve_config_path",
]

DEFAULT_CONFIG = "config.toml"

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ALERT_KEYS = {"webhook_url_env", "after_failures", "smtp"}
SMTP_KEYS = {"host", "port", "from", "to", "starttls", "username_env", "password_env"}
MEDIA_KEYS = {"archive", "max_image_bytes", "max_images_per_run", "max_total_bytes"}
COLLECT_KEYS = {"concurrency"}
FILE_SETTINGS = ("dictionary",)  # source settings naming a file: read from the config's folder
MAX_CONCURRENCY = 16  # threads fetching at once; past a few, the one writer is the limit


def read_collect_settings(tbl: Any) -> tuple[CollectSettings, list[str]]:
    """[collect] -> settings (the defaults when the table is absent) and every problem as
    'collect.key: ...'."""
    if tbl is None:
        return CollectSettings(), []
    if not isinstance(tbl, Mapping):
        return CollectSettings(), ["collect: must be a table, e.g. [collect]"]
    problems = [
        f"collect.{k}: unknown key (use one of {', '.join(sorted(COLLECT_KEYS))})"
        for k in tbl
        if k not in COLLECT_KEYS
    ]
    concurrency = tbl.get("concurrency", CollectSettings.concurrency)
    if (
        not isinstance(concurrency, int)
        or isinstance(concurrency, bool)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        problems.append(
            f"collect.concurrency: must be a whole number of sources from 1 to {MAX_CONCURRENCY} "
            f"(got {concurrency!r}); 1 collects one source at a time"
        )
        concurrency = CollectSettings.concurrency
    return CollectSettings(concurrency=concurrency), problems


WORKER_KEYS = {"distributed", "concurrency", "stall_seconds"}
MIN_STALL_SECONDS = 3  # workers beat every third of it: less would take a busy one for dead


def read_worker_settings(tbl: Any, database_url: str) -> tuple[WorkerSettings, list[str]]:
    """[workers] -> settings (the defaults when the table is absent) and every problem as
    'workers.key: ...'; distributed workers need PostgreSQL (`database_url`)."""
    if tbl is None:
        return WorkerSettings(), []
    if not isinstance(tbl, Mapping):
        return WorkerSettings(), ["workers: must be a table, e.g. [workers]"]
    problems = [
        f"workers.{k}: unknown key (use one of {', '.join(sorted(WORKER_KEYS))})"
        for k in tbl
        if k not in WORKER_KEYS
    ]
    distributed = tbl.get("distributed", False)
    if not isinstance(distributed, bool):
        problems.append(f"workers.distributed: must be true or false (got {distributed!r})")
        distributed = False
    if distributed and not database_url.startswith("postgresql"):
        problems.append(
            "workers.distributed: needs PostgreSQL ([storage] database = "
            '"postgresql+psycopg://user@host/db"); a SQLite file has one writer: set it to false'
        )
    numbers = {}
    for key, low in (("concurrency", 1), ("stall_seconds", MIN_STALL_SECONDS)):
        value = tbl.get(key, getattr(WorkerSettings, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"workers.{key}: must be a whole number, {low} or more (got {value!r})")
            value = getattr(WorkerSettings, key)
        numbers[key] = value
    return WorkerSettings(distributed=distributed, **numbers), problems


LIVE_KEYS = {"poll_minutes", "margin_minutes"}


def read_live_settings(tbl: Any) -> tuple[LiveSettings, list[str]]:
    """[live] -> settings (the defaults when the table is absent) and every problem as
    'live.key: ...'."""
    if tbl is None:
        return LiveSettings(), []
    if not isinstance(tbl, Mapping):
        return LiveSettings(), ["live: must be a table, e.g. [live]"]
    problems = [
        f"live.{k}: unknown key (use one of {', '.join(sorted(LIVE_KEYS))})"
        for k in tbl
        if k not in LIVE_KEYS
    ]
    numbers = {}
    for key, low in (("poll_minutes", 1), ("margin_minutes", 0)):
        value = tbl.get(key, getattr(LiveSettings, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"live.{key}: must be a whole number of minutes, {low} or more "
                            f"(got {value!r})")  # fmt: skip
            value = getattr(LiveSettings, key)
        numbers[key] = value
    return LiveSettings(**numbers), problems


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


def read_alert_settings(tbl: Any) -> tuple[AlertSettings | None, list[str]]:
    """[alerts] -> settings (None when the table is absent) and every problem as 'alerts.key: ...'."""
    if tbl is None:
        return None, []
    if not isinstance(tbl, Mapping):
        return None, ["alerts: must be a table, e.g. [alerts]"]
    problems = [
        f"alerts.{k}: unknown key (use one of {', '.join(sorted(ALERT_KEYS))})"
        for k in tbl
        if k not in ALERT_KEYS
    ]
    webhook = _env_name(tbl, "webhook_url_env", "alerts", problems)
    after = tbl.get("after_failures", 1)
    if not isinstance(after, int) or isinstance(after, bool) or after < 1:
        problems.append("alerts.after_failures: must be a whole number of runs, 1 or more")
        after = 1
    smtp = _smtp(tbl["smtp"], problems) if "smtp" in tbl else None
    if webhook is None and smtp is None and "smtp" not in tbl:
        problems.append("alerts: set webhook_url_env and/or add an [alerts.smtp] table")
    return AlertSettings(webhook_url_env=webhook, smtp=smtp, after_failures=after), problems


def _env_name(tbl: Mapping[str, Any], key: str, where: str, problems: list[str]) -> str | None:
    value = tbl.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
        problems.append(
            f"{where}.{key}: name the environment variable that holds the secret "
            f"(e.g. AGGREGATOR_ALERT_WEBHOOK), never the secret itself"
        )
        return None
    return value


def _smtp(tbl: Any, problems: list[str]) -> SmtpSettings | None:
    if not isinstance(tbl, Mapping):
        problems.append("alerts.smtp: must be a table, e.g. [alerts.smtp]")
        return None
    problems += [
        f"alerts.smtp.{k}: unknown key (use one of {', '.join(sorted(SMTP_KEYS))})"
        for k in tbl
        if k not in SMTP_KEYS
    ]
    host, sender = tbl.get("host"), tbl.get("from")
    to = [tbl["to"]] if isinstance(tbl.get("to"), str) else tbl.get("to")
    port, starttls = tbl.get("port", 587), tbl.get("starttls", True)
    bad = len(problems)
    if not isinstance(host, str) or not host.strip():
        problems.append('alerts.smtp.host: is required, e.g. host = "smtp.example.org"')
    if not isinstance(sender, str) or "@" not in sender:
        problems.append('alerts.smtp.from: is required, e.g. from = "aggregator@example.org"')
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and "@" in a for a in to):
        problems.append('alerts.smtp.to: list who to tell, e.g. to = ["comms@example.org"]')
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        problems.append("alerts.smtp.port: must be a port number such as 587")
    if not isinstance(starttls, bool):
        problems.append("alerts.smtp.starttls: must be true or false")
    user = _env_name(tbl, "username_env", "alerts.smtp", problems)
    password = _env_name(tbl, "password_env", "alerts.smtp", problems)
    if (user is None) != (password is None):
        problems.append("alerts.smtp: set both username_env and password_env, or neither")
    if len(problems) > bad:
        return None
    return SmtpSettings(
        host=str(host),
        sender=str(sender),
        to=tuple(to or ()),
        port=int(port),
        starttls=bool(starttls),
        username_env=user,
        password_env=password,
    )


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
        collect, collect_problems = read_collect_settings(self.data.get("collect"))
        self.problems += collect_problems
        workers, worker_problems = read_worker_settings(self.data.get("workers"), database_url)
        self.problems += worker_problems
        live, live_problems = read_live_settings(self.data.get("live"))
        self.problems += live_problems
        cron = self.string(schedule, "schedule", "cron", "0 2 * * *")
        if cron:
            problem = cron_problem(cron, event.timezone if event else ZoneInfo("UTC"))
            if problem:
                self.bad("schedule.cron", problem)
        grace = schedule.get("misfire_grace_minutes", 60)
        if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
            self.bad(
                "schedule.misfire_grace_minutes", "must be a whole number of minutes, 0 or more"
            )
            grace = 60
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
            collect=collect,
            workers=workers,
            live=live,
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

    def files_resolved(self, table: dict[str, Any]) -> dict[str, Any]:
        """A source's table with the files its settings name (FILE_SETTINGS) read from the
        config's folder, as every other path in a config is."""
        named = {k: v for k, v in table.items() if k in FILE_SETTINGS and isinstance(v, str) and v}
        return {**table, **{k: str(self.base / Path(v).expanduser()) for k, v in named.items()}}

    def sources(self, event: EventConfig | None) -> tuple[SourceConfig, ...]:
        """Every [[sources]] table: the keys every source has, read here, and its type's own
        settings, read by its connector's parser (problems named `sources[N].key`)."""
        raw = self.data.get("sources", [])
        if not isinstance(raw, list):
            self.bad("sources", "must be [[sources]] tables")
            return ()
        seen: set[str] = set()
        out: list[SourceConfig] = []
        for i, tbl in enumerate(raw):
            where = f"sources[{i}]"
            if not isinstance(tbl, dict):
                self.bad(where, "must be a table, e.g. [[sources]]")
                continue
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
            reach_back_days = self.reach_back(tbl, where)
            zone = event.timezone if event else ZoneInfo("UTC")
            settings, problems = parse_settings(stype, self.files_resolved(tbl), zone)
            self.problems += [f"{where}.{problem}" for problem in problems]
            hashtags = (h.lstrip("#＃") for h in self.strings(tbl, where, "hashtags"))
            out.append(
                SourceConfig(
                    name=name,
                    type=stype,
                    enabled=bool(enabled),
                    path=self.source_path(tbl, where, stype, bool(enabled)),
                    settings=settings,
                    hashtags=tuple(dict.fromkeys(h for h in hashtags if h)),
                    reach_back_days=reach_back_days,
                )
            )
        return tuple(out)

    def reach_back(self, tbl: Mapping[str, Any], where: str) -> float | None:
        """`reach_back_days`: how far back the source can still fetch (aggregator.health)."""
        days = tbl.get("reach_back_days")
        if days is None:
            return None
        if not isinstance(days, int | float) or isinstance(days, bool) or days <= 0:
            self.bad(
                f"{where}.reach_back_days", f"must be a number of days, more than 0 (got {days!r})"
            )
            return None
        return days

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
