"""A failed source is news in --log-file and cron's stderr, said once on each, never with a secret;
and the give-up line counts its attempts in good English."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from connectors.http import HttpClient, HttpError
from tests.helpers import invoke, live_project

SECRET = "s3cret-in-the-path-42"  # as if a token had been pasted into the instance URL
BASE = f"https://broken.example/{SECRET}"
FAILURE = "HTTP 500 after 1 attempt"


@pytest.mark.parametrize("mode", [[], ["--quiet"]], ids=["default", "quiet"])
@respx.mock
def test_a_failed_source_is_one_error_line_in_the_log_file_and_said_once_on_stderr(
    tmp_path: Path, mode: list[str]
):
    project = live_project(tmp_path, "broken", BASE)
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text() + "max_attempts = 1\n")  # the live source's table
    respx.get(url__startswith=BASE).mock(return_value=httpx.Response(500))
    log_file = tmp_path / "aggregator.log"
    result = invoke(cfg, "--log-file", str(log_file), *mode, "collect",
                    env={"AGGREGATOR_MASTODON_TOKEN": SECRET})  # fmt: skip
    assert result.exit_code == 1, result.output
    logged = log_file.read_text(encoding="utf-8")
    said = [line for line in logged.splitlines() if FAILURE in line and " ERROR " in line]
    assert len(said) == 1, logged
    assert "aggregator.pipeline: live: source 'live': GET https://broken.example/***/api" in said[0]
    assert result.stderr.count(FAILURE) == 1, result.stderr  # the command's own ✗ line
    assert next(line for line in result.stderr.splitlines() if FAILURE in line).startswith(
        "✗ live:"
    )
    assert SECRET not in logged + result.output


@respx.mock
def test_one_attempt_is_said_in_the_singular():
    url = "https://feed.example/rss"
    respx.get(url).mock(return_value=httpx.Response(503))
    with pytest.raises(HttpError) as info, HttpClient(max_attempts=1) as http:
        http.get(url)
    assert str(info.value) == f"GET {url} failed: HTTP 503 after 1 attempt"
