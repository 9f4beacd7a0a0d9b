"""axe-core (the copy packaged in axe-playwright-python) in Debian's Chromium on the report: the
bundled example as shipped, the example with photos, a right-to-left post and a public audience, and
the organisers' review page, each at desktop (1280 px) and phone (390 px) widths: 0 violations.

Skipped when Chromium or Playwright is missing, except with AGGREGATOR_REQUIRE_BROWSER=1 (CI sets
it), where a missing browser fails. No browser is downloaded: Playwright drives /usr/bin/chromium
(or $CHROMIUM) with the same flags as docs/screenshot.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aggregator.config import Config, load_config
from aggregator.media import MediaSettings, archive_media
from aggregator.pipeline import report, tag
from connectors.base import Page, Post
from docs.screenshot import build
from storage.db import open_database
from storage.queries import save_page
from tests.helpers import chromium, image_bytes, serving

# Pages as people see them, in a real browser: CI runs these (`pytest -m browser`); the default run
# leaves them out, as it does the slow tests, to stay under a minute.
pytestmark = pytest.mark.browser

WIDTHS = {"desktop": 1280, "phone": 390}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium("the accessibility check") as launched:
        yield launched


def _with_photos(folder: Path) -> Path:
    """The bundled example plus three well-liked posts: one in Urdu, a photo with alt text and one
    without, archived from a local server; written for the public."""
    build(folder)
    images = {
        "/slide.png": image_bytes("PNG", (900, 600)),
        "/room.jpg": image_bytes("JPEG", (640, 960)),
    }
    config = load_config(folder / "config.toml")
    config = dataclasses.replace(
        config, media=MediaSettings(archive=True), report_audience="public"
    )
    engine = open_database(config.database_url)
    try:
        with serving(images) as (_, base), httpx.Client() as client:
            save_page(engine, "extra", Page(_extra_posts(config, base)))
            assert archive_media(engine, config, http=client).archived == 2
        tag(engine, config)
        return report(engine, config)["html"]
    finally:
        engine.dispose()


def _extra_posts(config: Config, base: str) -> list[Post]:
    when = config.sessions[1].start + timedelta(minutes=7)
    return [
        Post("mastodon", "p1", when, "nadia@example.org", "آج کی نشست میں مریضوں کی آواز کو مرکز میں رکھنے پر بہت اچھی گفتگو ہوئی",
             url="https://example.org/@nadia/1", likes=90, lang="ur"),
        Post("mastodon", "p2", when, "sam@example.org", "The slide everyone photographed: carers as partners",
             url="https://example.org/@sam/2", likes=80,
             media=[{"url": f"{base}/slide.png", "type": "image", "alt": "A slide: carers are partners in care"}]),
        Post("mastodon", "p3", when, "jo@example.org", "Packed room for the equality session this afternoon",
             url="https://example.org/@jo/3", likes=70,
             media=[{"url": f"{base}/room.jpg", "type": "image", "alt": None}]),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    example = tmp_path_factory.mktemp("example")
    photos = tmp_path_factory.mktemp("photos")
    return {
        "example": build(example, review=True),
        "review": example / "review.html",
        "photos": _with_photos(photos),
    }


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
@pytest.mark.parametrize("page_name", ["example", "photos", "review"])
def test_axe_finds_no_violations_in_the_report(browser, pages, page_name, width):
    from axe_playwright_python.sync_playwright import Axe

    # bypass_csp: the page's own policy forbids every script, axe's too; it is tested elsewhere
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(pages[page_name].as_uri())
        if page_name == "photos":  # the page under test really shows what it is meant to
            assert page.locator("figure.photo img").count() >= 2
            assert page.locator('[lang="ur"][dir="rtl"]').count() >= 1
        results = Axe().run(page)
    finally:
        context.close()
    assert results.violations_count == 0, results.generate_report()
