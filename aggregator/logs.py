"""Where log lines go (stderr, --log-file), and the filter that keeps secrets out of every one of them.

A secret is the value of an environment variable the config names through a `*_env` key, or of an
`AGGREGATOR_*` variable whose name says it is one (TOKEN, PASSWORD, SECRET, KEY, WEBHOOK...), plus
anything after an `Authorization:` header or `Bearer`. Values are read when a line is written, so
a variable set after start-up is covered too.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aggregator import safeguarding

__all__ = [
    "IN_SUMMARY",
    "SecretFilter",
    "printable",
    "redact",
    "secret_env_names",
    "setup_logging",
    "teardown_logging",
    "watch_secrets",
]

MASK = "***"
MIN_SECRET = 6  # shorter values would mask ordinary words in every line
SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PASS|KEY|AUTH|WEBHOOK|CREDENTIAL|COOKIE", re.I
)
AUTH_HEADER = re.compile(
    r"""(?i)((?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)(?:(?:bearer|basic|token)\s+)?[^\s'",;}]+"""
)
BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{6,}")
STDERR_FORMAT = "%(levelname)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# `extra=` for a line whose news the command also prints in its own words (a failed source is a
# "✗ name: error" line of the CLI's summary): the log file keeps it with its time, stderr not twice.
IN_SUMMARY = {"in_summary": True}

_watched: set[str] = set()


def watch_secrets(names: Iterable[str]) -> None:
    """Treat the values of these environment variables as secrets from now on."""
    _watched.update(n for n in names if n)


def secret_env_names(raw: Any) -> set[str]:
    """Every environment variable name a config table names through a key ending in `_env`."""
    found: set[str] = set()
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if str(key).endswith("_env"):
                found |= _names(value)
            else:
                found |= secret_env_names(value)
    elif isinstance(raw, list | tuple):
        for item in raw:
            found |= secret_env_names(item)
    return found


def _names(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, Mapping):  # e.g. a token_env per Mastodon instance
        return {v for v in value.values() if isinstance(v, str)}
    if isinstance(value, list | tuple):
        return {v for v in value if isinstance(v, str)}
    return set()


def _secrets(env: Mapping[str, str]) -> list[str]:
    names = set(_watched)
    names |= {n for n in env if n.startswith("AGGREGATOR_") and SECRET_NAME.search(n)}
    values: set[str] = set()
    for name in names:
        value = (env.get(name) or "").strip()
        if len(value) >= MIN_SECRET:
            values |= {value, quote(value, safe=""), quote(value, safe="/:"), *_url_parts(value)}
    return sorted(values, key=len, reverse=True)  # longest first: a URL before its own path


def _url_parts(value: str) -> set[str]:
    """A secret URL (a webhook) keeps its secret in its path, query or password, which a server
    or a library may echo on their own."""
    parts = urlsplit(value)
    if not (parts.scheme and parts.netloc):
        return set()
    pieces = {parts.path, parts.query, parts.password or "", f"{parts.path}?{parts.query}"}
    return {p for p in pieces if len(p.strip("/?")) >= MIN_SECRET}


def printable(text: object, limit: int = 280) -> str:
    """One line a terminal shows as written. Post content, and a warning or a name that quotes it,
    is hostile: no control character, line break or direction override survives; cut at `limit`."""
    line = "".join(c if c.isprintable() else " " for c in str(text))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with every known secret and Authorization/Bearer credential replaced by ***, and
    any personal identifier a post carried (an NHS number, phone, e-mail, home address) removed:
    log lines and run-log messages quote rejected records, and they must not keep those."""
    if not text:
        return text
    for secret in _secrets(os.environ if env is None else env):
        text = text.replace(secret, MASK)
    text = AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)
    text = BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return safeguarding.redact(text)[0]


class SecretFilter(logging.Filter):
    """Masks secrets in a record's message, traceback and stack before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: log it as it is, masked
            message = str(record.msg)
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time: rich's progress display and click's test
    runner both swap it, and a handler holding the old stream would write around them. Lines
    logged with `IN_SUMMARY` are left to the summary the command prints."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "in_summary", False) and bool(super().filter(record))

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup_logging(verbose: bool = False, quiet: bool = False, log_file: Path | None = None) -> None:
    """Readable lines on stderr (warnings; everything with `verbose`; errors only with `quiet`) and,
    with `log_file`, timestamped lines appended there (info and up; everything with `verbose`).

    :raises OSError: when the log file cannot be opened.
    """
    teardown_logging()
    handlers: list[logging.Handler] = [_Stderr()]
    handlers[0].setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)
    handlers[0].setFormatter(logging.Formatter(STDERR_FORMAT))
    if log_file is not None:
        to_file = logging.FileHandler(log_file, encoding="utf-8", delay=False)
        to_file.setLevel(logging.DEBUG if verbose else logging.INFO)
        to_file.setFormatter(logging.Formatter(FILE_FORMAT))
        handlers.append(to_file)
    root = logging.getLogger()
    root._aggregator_level = root.level  # type: ignore[attr-defined]
    for handler in handlers:
        handler.addFilter(SecretFilter())
        handler._aggregator = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    wanted = min(h.level for h in handlers)
    root.setLevel(min(root.level or wanted, wanted))  # never hide what a caller already asked for


def teardown_logging() -> None:
    """Remove (and close) the handlers setup_logging added; restore the root level."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_aggregator", False)]:
        root.removeHandler(handler)
        handler.close()
    if hasattr(root, "_aggregator_level"):
        root.setLevel(root._aggregator_level)
        del root._aggregator_level
