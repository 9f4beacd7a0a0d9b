"""Logging: readable stderr, --log-file, --verbose, --quiet, progress only on a terminal, and no
secret written anywhere (reliability case 36), even by a server that echoes the token back."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import aggregator.cli.app
from aggregator.logs import SecretFilter, redact, secret_env_names, watch_secrets
from tests.helpers import invoke

TOKEN = "tok-9f8e7d6c5b4a-SECRET"
HOOK_SECRET = "B0GUS-hook-s3cr3t"


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("t", logging.ERROR, __file__, 1, message, args, info)


def formatted(rec: logging.LogRecord) -> str:
    assert SecretFilter().filter(rec)
    return logging.Formatter("%(message)s").format(rec)


def test_case_36_values_of_watched_and_aggregator_secret_variables_are_masked(monkeypatch):
    monkeypatch.setenv("AGGREGATOR_X_BEARER_TOKEN", TOKEN)
    monkeypatch.setenv("MY_WEBHOOK", f"https://hooks.example/{HOOK_SECRET}")
    monkeypatch.setenv("AGGREGATOR_CONFIG", "config.toml")  # not a secret: left alone
    watch_secrets({"MY_WEBHOOK"})
    line = formatted(
        record(
            "token %s posted to %s using %s",
            TOKEN,
            f"https://hooks.example/{HOOK_SECRET}",
            "config.toml",
        )
    )
    assert TOKEN not in line and HOOK_SECRET not in line
    assert line == "token *** posted to *** using config.toml"
    assert redact(f"a server echoed /{HOOK_SECRET} back") == "a server echoed *** back"


def test_case_36_tracebacks_and_authorization_headers_are_masked(monkeypatch):
    monkeypatch.setenv("AGGREGATOR_MASTODON_TOKEN", TOKEN)
    try:
        raise RuntimeError(f"server said: bad token {TOKEN}")
    except RuntimeError as exc:
        line = formatted(record("failed", exc=exc))
    assert "RuntimeError: server said: bad token ***" in line and TOKEN not in line
    headers = "{'Authorization': 'Bearer abc.def.ghi-123456', 'Accept': 'json'} authorization: Basic dXNlcjpwYXNz"
    assert redact(headers) == "{'Authorization': '***', 'Accept': 'json'} authorization: ***"
    assert redact("GET with Bearer abcdefghijkl done") == "GET with Bearer *** done"


def test_short_values_and_ordinary_words_are_left_alone(monkeypatch):
    monkeypatch.setenv("AGGREGATOR_X_BEARER_TOKEN", "abc")  # too short to mask safely
    assert redact("abc basic principles, 400 posts") == "abc basic principles, 400 posts"


def test_every_env_key_of_the_config_is_a_secret_name():
    raw = {
        "sources": [
            {"token_env": "A_TOKEN"},
            {"token_env": {"https://m.example": "M_TOKEN"}},
            {"handle_env": "B_HANDLE", "password_env": "B_PASS", "name": "b"},
        ],
        "alerts": {"webhook_url_env": "HOOK", "smtp": {"password_env": "SMTP_PASS"}},
    }
    assert secret_env_names(raw) == {
        "A_TOKEN",
        "M_TOKEN",
        "B_HANDLE",
        "B_PASS",
        "HOOK",
        "SMTP_PASS",
    }


def test_log_file_gets_timestamped_info_lines_and_stderr_stays_quiet(project, tmp_path):
    log = tmp_path / "aggregator.log"
    result = invoke(project, "--log-file", str(log), "collect")
    assert result.exit_code == 0
    assert result.stderr == ""  # nothing went wrong: nothing on stderr
    text = log.read_text()
    assert re.search(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO aggregator.pipeline: example: ok, 400 new",
        text,
        re.M,
    )
    assert " DEBUG " not in text


def test_verbose_logs_debug_and_quiet_hides_warnings(project, tmp_path):
    verbose = invoke(project, "--verbose", "collect")
    assert "DEBUG aggregator.pipeline: example: resuming from cursor None" in verbose.stderr
    log = tmp_path / "v.log"
    invoke(project, "-v", "--log-file", str(log), "collect")
    assert re.search(
        r" DEBUG aggregator.pipeline: example: resuming from cursor \{", log.read_text()
    )
    (project / "bad.jsonl").write_text("{oops\n")
    cfg = project / "config.toml"
    cfg.write_text(
        cfg.read_text().replace('path = "examples/transformathon-2016.jsonl"', 'path = "bad.jsonl"')
    )
    loud, quiet = invoke(project, "collect"), invoke(project, "--quiet", "collect")
    assert "WARNING aggregator.pipeline: example: skipped line 1" in loud.stderr
    assert "WARNING" not in quiet.stderr


def test_verbose_and_quiet_together_or_a_bad_log_file_are_usage_errors(project, tmp_path):
    assert invoke(project, "-v", "-q", "status").exit_code == 2
    result = invoke(project, "--log-file", str(tmp_path / "no" / "such" / "dir.log"), "status")
    assert result.exit_code == 2 and "--log-file" in result.output


def test_progress_bars_only_on_a_terminal(project, monkeypatch):
    plain = invoke(project, "collect")
    assert plain.exit_code == 0 and "posts" not in plain.stderr  # under cron: silent
    (project / "data" / "aggregator.db").unlink()
    monkeypatch.setattr(aggregator.cli.app, "_is_terminal", lambda: True)
    bars = invoke(project, "collect")
    assert bars.exit_code == 0
    assert "example" in bars.stderr and "1 pages, 400 posts" in bars.stderr
    quiet = invoke(project, "--quiet", "collect")
    assert "pages," not in quiet.stderr


@pytest.fixture
def echoing_server() -> Iterator[str]:
    """A hostile instance: refuses the token and echoes it back in a header and the body; the
    webhook behind it fails."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization", "")
            self.reply(401, {"error": f"The access token {auth} is invalid"}, auth)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.reply(500, {"error": f"no such hook {self.path}"}, self.path)

        def reply(self, code: int, body: dict, echo: str) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("X-Echo", echo)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_case_36_a_planted_token_appears_in_no_output_at_all(project, tmp_path, echoing_server):
    cfg = project / "config.toml"
    cfg.write_text(
        cfg.read_text()
        + f"""
[[sources]]
name = "echo"
type = "mastodon"
instance = "{echoing_server}"
token_env = "AGGREGATOR_ECHO_TOKEN"

[alerts]
webhook_url_env = "ALERT_HOOK"
"""
    )
    log = tmp_path / "debug.log"
    env = {"AGGREGATOR_ECHO_TOKEN": TOKEN, "ALERT_HOOK": f"{echoing_server}/hooks/{HOOK_SECRET}"}
    result = invoke(project, "--verbose", "--log-file", str(log), "run", env=env)
    assert result.exit_code == 1
    assert (
        "echo" in result.stderr
        and "refused the token in env var AGGREGATOR_ECHO_TOKEN" in result.stderr
    )
    logged = log.read_text()
    assert "X-Echo" in logged and " DEBUG " in logged  # the echo reached the debug log, masked
    assert "alert webhook (URL in ALERT_HOOK) answered HTTP 500" in logged
    status = invoke(project, "status", "--json")
    outputs = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "log": logged,
        "status": status.output,
    }
    outputs |= {str(p): p.read_bytes().decode("latin-1") for p in project.rglob("*") if p.is_file()}
    assert any("data/aggregator.db" in name for name in outputs)
    assert any("site" in name for name in outputs)
    for name, text in outputs.items():
        for secret in (TOKEN, HOOK_SECRET):
            assert secret not in text, f"{secret} leaked into {name}"
