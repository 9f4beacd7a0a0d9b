"""`aggregator serve`'s pages in Debian's Chromium (Playwright, no browser download), the app on
uvicorn on 127.0.0.1: a post stored in the database appears on /wall within 5 s; hiding posts on
/moderate, by click and by key, takes them off the wall, and `aggregator report` and `export` leave
them out; a request without the moderator's session is refused and changes nothing; axe-core finds
no violation on either page.

Skipped when Chromium or Playwright is missing, except with AGGREGATOR_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aggregator.config import load_config
from aggregator.web.app import create_app
from connectors.base import Page, Post
from docs.screenshot_live import serving, sign_in
from storage.db import open_database
from storage.queries import save_page
from tests.helpers import chromium, invoke, read_csv

pytestmark = pytest.mark.browser

TOKEN = "browser-test-token-0123456789"
WITHIN = 5000  # ms: the bound for a post to reach the screen


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium("the wall checks") as launched:
        yield launched


@pytest.fixture
def live(example_loaded):
    """The example's project, a database engine of the test's own, the moment the app's clock
    says (the middle of Session 2) and the app's address."""
    config = load_config(example_loaded / "config.toml")
    moment = config.sessions[2].start + timedelta(minutes=38)
    engine = open_database(config.database_url)
    try:
        with serving(create_app(config, TOKEN, clock=lambda: moment)) as base:
            yield example_loaded, engine, moment, base
    finally:
        engine.dispose()


def _post(pid: str, text: str, when: Any) -> Post:
    return Post("mastodon", pid, when, f"{pid}@example.org", text,
                url=f"https://example.org/@{pid}/1", likes=900, reposts=90)  # fmt: skip


def _exported(project: Path) -> set[str]:
    result = invoke(project, "export", "--format", "csv")
    assert result.exit_code == 0, result.output
    return {row["post_id"] for row in read_csv(result.output)}


def _in_story(project: Path) -> set[str]:
    assert invoke(project, "report").exit_code == 0
    config = load_config(project / "config.toml")
    told = json.loads((config.report_output / "story.json").read_text(encoding="utf-8"))
    return {p["post_id"] for part in told["parts"] for p in part["highlights"]}


def test_a_post_reaches_the_wall_and_hiding_it_takes_it_off_everything(browser, live):
    from playwright.sync_api import expect

    project, engine, moment, base = live
    wall = browser.new_page(viewport={"width": 1920, "height": 1080})
    wall.goto(f"{base}/wall")
    one, two = (
        wall.locator('[data-post="mastodon/live-1"]'),
        wall.locator('[data-post="mastodon/live-2"]'),
    )
    # made "now" by the app's clock (a little ahead of it, as a fast platform clock may be): the newest
    save_page(engine, "live", Page([
        _post("live-1", "The room agrees: carers are partners in care", moment + timedelta(minutes=4)),
        _post("live-2", "Brilliant point about co-production from the floor", moment + timedelta(minutes=4, seconds=10)),
    ]))  # fmt: skip
    expect(one).to_be_visible(timeout=WITHIN)
    expect(two).to_be_visible(timeout=WITHIN)
    assert {"live-1", "live-2"} <= _in_story(project) and {"live-1", "live-2"} <= _exported(project)

    refused = httpx.post(f"{base}/moderate/decide", data={"action": "hide", "platform": "mastodon",
                                                          "post_id": "live-1"})  # fmt: skip
    assert refused.status_code == 401
    forged = httpx.post(f"{base}/login", data={"who": "x", "token": "guess"})
    assert forged.status_code == 401
    expect(one).to_be_visible()

    moderate = browser.new_page(viewport={"width": 1280, "height": 1200})
    sign_in(moderate, base, token=TOKEN)
    card = moderate.locator("[data-card]", has_text="carers are partners in care")
    card.get_by_role("button", name=re.compile("^Hide")).click()  # by click
    expect(one).to_have_count(0, timeout=WITHIN)
    expect(
        moderate.locator("[data-card]", has_text="carers are partners").locator(".badge")
    ).to_have_text("hidden")

    card = moderate.locator("[data-card]", has_text="co-production from the floor")
    card.focus()
    moderate.keyboard.press("h")  # by key
    expect(two).to_have_count(0, timeout=WITHIN)
    expect(wall.locator(".posts .card").first).to_be_visible()  # the rest of the wall stays

    assert not {"live-1", "live-2"} & _in_story(project)
    assert not {"live-1", "live-2"} & _exported(project)


@pytest.mark.parametrize("path", ["/wall", "/moderate"])
def test_axe_finds_no_violations_on_the_live_pages(browser, live, path):
    from axe_playwright_python.sync_playwright import Axe

    _, _, _, base = live
    # bypass_csp: the pages' own policy allows only their own script, not axe's
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        page = context.new_page()
        if path == "/moderate":
            sign_in(page, base, token=TOKEN)
        else:
            page.goto(f"{base}{path}")
        assert page.locator(".card").count() >= 3  # the page under test shows posts
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
    finally:
        context.close()
