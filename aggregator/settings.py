"""The configuration's types: what `aggregator.config` reads config.toml into, and what every
layer above takes. Frozen, typed, no I/O. Secrets never live here: only environment variable
*names*.

Core layer: standard library only (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from aggregator.errors import UsageError

__all__ = [
    "ARCHIVE_TYPES",
    "AUDIENCES",
    "SOURCE_TYPES",
    "STREAMING_TYPES",
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
]

SOURCE_TYPES = ("jsonl", "mastodon", "bluesky", "x", "feed", "twarc", "tags", "jetstream")
STREAMING_TYPES = ("jetstream",)  # sources that stream: `aggregator live` keeps them open
ARCHIVE_TYPES = ("jsonl", "twarc", "tags")
AUDIENCES = ("organisers", "public")  # [report] audience: who the story is written for


class ConfigError(UsageError):
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
    path: Path | None = None  # archives only, resolved against the config folder
    # its type's own settings as its connector parsed them (connectors.settings), valid
    settings: Any = None
    hashtags: tuple[str, ...] = ()  # its own `hashtags` (no '#'); empty: the event's
    # how many days back it can still fetch, more than 0 (aggregator.health's gap warnings);
    # None: its type's own reach if it has one (X recent search: 7 days), else no limit known
    reach_back_days: float | None = None


MiB = 1024 * 1024


@dataclass(frozen=True)
class MediaSettings:
    archive: bool = False
    max_image_bytes: int = 8 * MiB  # an image larger than this is not downloaded
    max_images_per_run: int = 100  # images fetched (or tried) in one run; the rest wait
    max_total_bytes: int = 100 * MiB  # the archive's thumbnails together


@dataclass(frozen=True)
class CollectSettings:
    # sources collected at once, each in its own thread (one writer saves their pages)
    concurrency: int = 4


@dataclass(frozen=True)
class WorkerSettings:
    # [workers] (docs/scaling.md): sources collected by `aggregator worker` processes through a
    # PostgreSQL job queue; `run` defers one job per source and waits for them
    distributed: bool = False
    concurrency: int = 1  # jobs one worker runs at once (`aggregator worker --concurrency`)
    stall_seconds: int = 60  # a worker silent this long is dead: its job goes to another


@dataclass(frozen=True)
class LiveSettings:
    # [live] (docs/live.md): `aggregator live` polls the polling sources this often, during the
    # programme's hours widened by the margin on each side; the streaming sources run throughout
    poll_minutes: int = 5
    margin_minutes: int = 60


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
    collect: CollectSettings = field(default_factory=CollectSettings)  # [collect]
    workers: WorkerSettings = field(default_factory=WorkerSettings)  # [workers]
    live: LiveSettings = field(default_factory=LiveSettings)  # [live]

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def source(self, name: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.name == name), None)

    def session(self, session_id: str) -> SessionConfig | None:
        return next((s for s in self.sessions if s.id == session_id), None)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    username_env: str | None = None
    password_env: str | None = None


@dataclass(frozen=True)
class AlertSettings:
    webhook_url_env: str | None = None
    smtp: SmtpSettings | None = None
    after_failures: int = 1  # a source failing this many runs in a row is worth a message
