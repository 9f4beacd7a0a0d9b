"""Alerts: the [alerts] config, the digest, a webhook (respx) and e-mail (a tiny SMTP server on
127.0.0.1), sent after a failed run or N failures in a row, and never fatal when they fail."""

from __future__ import annotations

import base64
import json
import logging
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
import respx

from aggregator.alerts import after_run, send
from aggregator.config import ConfigError, load_config
from aggregator.pipeline import collect
from aggregator.settings import AlertSettings, SmtpSettings
from tests.helpers import Flaky, invoke

HOOK = "https://hooks.example/services/T0/B0/s3cr3t-hook-path"
ENV = {"AGGREGATOR_ALERT_WEBHOOK": HOOK}


ALERTS = """
[alerts]
webhook_url_env = "AGGREGATOR_ALERT_WEBHOOK"
after_failures = 2
"""


@pytest.fixture
def flaky(flaky):
    """The shared failing "news" source, plus a webhook alert after 2 failures."""
    cfg = flaky / "config.toml"
    cfg.write_text(cfg.read_text() + ALERTS)
    return flaky


def test_alert_settings_are_read_from_the_config(flaky):
    cfg = flaky / "config.toml"
    cfg.write_text(
        cfg.read_text() + '[alerts.smtp]\nhost = "smtp.example.org"\nfrom = "a@example.org"\n'
        'to = "comms@example.org"\nusername_env = "SMTP_USER"\npassword_env = "SMTP_PASS"\n'
    )
    config = load_config(cfg)
    assert config.alerts == AlertSettings(
        webhook_url_env="AGGREGATOR_ALERT_WEBHOOK",
        after_failures=2,
        smtp=SmtpSettings(
            "smtp.example.org",
            "a@example.org",
            ("comms@example.org",),
            username_env="SMTP_USER",
            password_env="SMTP_PASS",
        ),
    )
    assert load_config(cfg).misfire_grace_minutes == 60


def test_bad_alert_settings_name_every_field(project):
    cfg = project / "config.toml"
    cfg.write_text(
        cfg.read_text() + '\n[alerts]\nwebhook_url_env = "https://hooks.example/x"\n'
        'after_failures = 0\nwebhok = 1\n[alerts.smtp]\nhost = "smtp.example.org"\n'
        'to = []\nusername_env = "SMTP_USER"\n'
    )
    with pytest.raises(ConfigError) as bad:
        load_config(cfg)
    where = [p.split(":")[0] for p in bad.value.problems]
    assert where == [
        "alerts.webhok",
        "alerts.webhook_url_env",
        "alerts.after_failures",
        "alerts.smtp.from",
        "alerts.smtp.to",
        "alerts.smtp",
    ]
    assert "never the secret itself" in bad.value.problems[1]
    result = invoke(project, "run")
    assert result.exit_code == 2 and "alerts.smtp.to" in result.output


def test_an_empty_alerts_table_says_what_to_add(project):
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text() + "\n[alerts]\nafter_failures = 3\n")
    with pytest.raises(ConfigError, match="set webhook_url_env and/or add an"):
        load_config(cfg)


@respx.mock
def test_a_source_failing_n_runs_in_a_row_posts_one_digest(flaky, engine):
    hook = respx.post(HOOK).mock(return_value=httpx.Response(200))
    config = load_config(flaky / "config.toml")
    collect(engine, config)
    assert after_run(engine, config, env=ENV) == [] and not hook.called  # once is not yet N
    collect(engine, config)
    assert after_run(engine, config, env=ENV) == ["webhook"]
    text = json.loads(hook.calls.last.request.content)["text"]
    assert text.startswith("Hashtag Aggregator, The People's Transformathon:")
    assert "Source 'news' has failed 2 run(s) in a row" in text
    assert "HTTP 503 after 5 attempts" in text and "it last worked never" in text
    assert "Source 'example'" not in text  # the healthy source is not mentioned
    assert "\n" not in text  # one paragraph


@respx.mock
def test_a_failed_run_alerts_even_when_every_source_is_fine(flaky, engine, monkeypatch):
    monkeypatch.setattr(Flaky, "broken", False)
    hook = respx.post(HOOK).mock(return_value=httpx.Response(200))
    config = load_config(flaky / "config.toml")
    collect(engine, config)
    assert after_run(engine, config, error="could not save posts: disk is full", env=ENV) == [
        "webhook"
    ]
    assert "the run at" in json.loads(hook.calls.last.request.content)["text"]
    assert (
        "failed: could not save posts: disk is full."
        in json.loads(hook.calls.last.request.content)["text"]
    )


@respx.mock
def test_the_nightly_run_sends_the_alert(flaky):
    hook = respx.post(HOOK).mock(return_value=httpx.Response(204))
    assert invoke(flaky, "run", env=ENV).exit_code == 1
    assert not hook.called
    assert invoke(flaky, "run", env=ENV).exit_code == 1
    assert hook.call_count == 1


@respx.mock
@pytest.mark.parametrize("answer", [httpx.Response(500), httpx.ConnectTimeout("slow")])
def test_a_webhook_that_fails_is_logged_without_its_url_and_never_raises(answer, caplog):
    respx.post(HOOK).mock(side_effect=[answer])
    settings = AlertSettings(webhook_url_env="AGGREGATOR_ALERT_WEBHOOK")
    with caplog.at_level(logging.ERROR):
        assert send(settings, "subject", "text", env=ENV) == []
    assert "alert webhook (URL in AGGREGATOR_ALERT_WEBHOOK)" in caplog.text
    assert "s3cr3t" not in caplog.text and "hooks.example" not in caplog.text


def test_a_missing_webhook_variable_is_named(caplog):
    with caplog.at_level(logging.ERROR):
        assert send(AlertSettings(webhook_url_env="NOT_SET_ANYWHERE"), "s", "t", env={}) == []
    assert "set the environment variable NOT_SET_ANYWHERE" in caplog.text


class TinySmtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to take one message: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def handle(self) -> None:
        server = self.server
        self.say("220 tiny ESMTP")
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.say("250-tiny", "250 AUTH PLAIN")
            elif verb == "AUTH":
                server.logins.append(base64.b64decode(line.split()[-1]).split(b"\0")[1:])
                self.say("235 accepted")
            elif verb == "DATA":
                self.say("354 go on")
                body = []
                for data in self.rfile:
                    if data.rstrip(b"\r\n") == b".":
                        break
                    body.append(data.decode())
                server.messages.append("".join(body))
                self.say("250 queued")
            elif verb == "QUIT":
                self.say("221 bye")
                return
            else:
                self.say("250 ok")

    def say(self, *lines: str) -> None:
        self.wfile.write("".join(f"{line}\r\n" for line in lines).encode())


@pytest.fixture
def smtp() -> Iterator[socketserver.TCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), TinySmtp)
    server.daemon_threads = True
    server.messages, server.logins = [], []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_an_email_alert_reaches_the_smtp_server(smtp):
    settings = AlertSettings(
        smtp=SmtpSettings(
            "127.0.0.1",
            "aggregator@example.org",
            ("comms@example.org",),
            port=smtp.server_address[1],
            starttls=False,
            username_env="SMTP_USER",
            password_env="SMTP_PASS",
        )
    )
    env = {"SMTP_USER": "comms", "SMTP_PASS": "pa55word"}
    assert send(settings, "[aggregator] news failing", "Source 'news' has failed.", env=env) == [
        "email"
    ]
    (message,) = smtp.messages
    assert "Subject: [aggregator] news failing" in message and "To: comms@example.org" in message
    assert "Source 'news' has failed." in message
    assert smtp.logins == [[b"comms", b"pa55word"]]


def test_an_smtp_server_that_is_down_is_logged_and_never_raises(smtp, caplog):
    port = smtp.server_address[1]
    smtp.shutdown()
    smtp.server_close()
    settings = AlertSettings(
        smtp=SmtpSettings(
            "127.0.0.1", "a@example.org", ("b@example.org",), port=port, starttls=False
        )
    )
    with caplog.at_level(logging.ERROR):
        assert send(settings, "s", "t", env={}) == []
    assert f"alert e-mail via 127.0.0.1:{port} failed" in caplog.text


def test_missing_smtp_credentials_are_named(caplog):
    smtp = SmtpSettings(
        "127.0.0.1",
        "a@example.org",
        ("b@example.org",),
        port=1,
        username_env="SMTP_USER",
        password_env="SMTP_PASS",
    )
    with caplog.at_level(logging.ERROR):
        assert send(replace(AlertSettings(), smtp=smtp), "s", "t", env={"SMTP_USER": "x"}) == []
    assert "set the environment variable(s) SMTP_PASS" in caplog.text
