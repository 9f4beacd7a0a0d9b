"""Telling a person when the nightly job went wrong: a one-paragraph digest by webhook and/or e-mail.

Secrets (the webhook URL, the SMTP login) are read from the environment variables the config names,
only when an alert is sent. Sending never raises: a failed alert is logged and the run goes on.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

import httpx

from aggregator.clock import EventClock, utcnow
from aggregator.logs import redact
from aggregator.settings import AlertSettings, SmtpSettings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from aggregator.config import Config
    from aggregator.health import SourceHealth

__all__ = ["after_run", "digest", "send"]

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def _worked(h: SourceHealth, clock: EventClock) -> str:
    """When the source last worked; posts stored by a run that did not finish count, never 'never'."""
    worked = f"it last worked {clock.stamp(h.last_success)}"
    if h.last_progress is None:
        return worked
    if h.last_success is None:
        worked = "it has not finished a run yet"
    return f"{worked}, and last stored posts {clock.stamp(h.last_progress)} ({h.progress})"


def digest(
    config: Config,
    failing: Sequence[SourceHealth],
    error: str | None = None,
    now: datetime | None = None,
) -> str:
    """One paragraph: what failed, each failing source's error and when it last worked, times in
    the event's zone."""
    clock = EventClock(config.event.timezone)
    parts = [f"Hashtag Aggregator, {config.event.name}:"]
    if error:
        parts.append(f"the run at {clock.stamp(now or utcnow())} failed: {error.rstrip('.')}.")
    for h in failing:
        parts.append(
            f"Source {h.name!r} has failed {h.failures_in_a_row} run(s) in a row "
            f"(latest error: {(h.last_error or 'unknown').rstrip('.')}); {_worked(h, clock)}."
        )
    parts.append("Posts already collected are kept; `aggregator status` shows the details.")
    return redact(" ".join(parts))


def send(
    settings: AlertSettings,
    subject: str,
    text: str,
    env: Mapping[str, str] | None = None,
    http: httpx.Client | None = None,
) -> list[str]:
    """Send through every configured channel; returns the channels that worked. Never raises."""
    env = os.environ if env is None else env
    sent = []
    if settings.webhook_url_env and _webhook(settings.webhook_url_env, text, env, http):
        sent.append("webhook")
    if settings.smtp and _email(settings.smtp, subject, text, env):
        sent.append("email")
    return sent


def _webhook(name: str, text: str, env: Mapping[str, str], http: httpx.Client | None) -> bool:
    url = env.get(name, "").strip()
    if not url:
        log.error(
            "alert not sent by webhook: set the environment variable %s to the webhook URL", name
        )
        return False
    client = http or httpx.Client(timeout=TIMEOUT)
    try:
        # The URL is a secret: messages name the variable holding it, never the URL.
        resp = client.post(url, json={"text": text}, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        log.error("alert webhook (URL in %s) failed: %s", name, type(exc).__name__)
        return False
    finally:
        if http is None:
            client.close()
    if not resp.is_success:
        log.error("alert webhook (URL in %s) answered HTTP %d", name, resp.status_code)
        return False
    return True


def _email(smtp: SmtpSettings, subject: str, text: str, env: Mapping[str, str]) -> bool:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, smtp.sender, ", ".join(smtp.to)
    msg.set_content(text)
    missing = [n for n in (smtp.username_env, smtp.password_env) if n and not env.get(n)]
    if missing:
        log.error("alert e-mail not sent: set the environment variable(s) %s", ", ".join(missing))
        return False
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as server:
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
            if smtp.username_env and smtp.password_env:
                server.login(env.get(smtp.username_env, ""), env.get(smtp.password_env, ""))
            server.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        log.error("alert e-mail via %s:%d failed: %s", smtp.host, smtp.port, exc)
        return False
    return True


def after_run(
    engine: Engine,
    config: Config,
    error: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    http: httpx.Client | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Alert if the run failed (`error`) or a source failed [alerts] after_failures runs in a row;
    the channels that worked. `now` is when the digest says the run was (default: now)."""
    from aggregator.health import source_health

    settings = getattr(config, "alerts", None)
    if settings is None:
        return []
    failing: list[SourceHealth] = []
    try:
        failing = [
            h
            for h in source_health(engine, config)
            if h.failures_in_a_row >= settings.after_failures
        ]
    except Exception:  # a broken database must not stop the alert about it
        log.warning("could not read the sources' history for the alert", exc_info=True)
    if error is None and not failing:
        return []
    what = "the run failed" if error else f"{len(failing)} source(s) failing"
    try:
        return send(
            settings,
            f"[aggregator] {config.event.name}: {what}",
            digest(config, failing, error, now),
            env,
            http,
        )
    except Exception:  # an alert must never take the run down with it
        log.exception("could not send the alert")
        return []
