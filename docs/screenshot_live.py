"""Screenshot the live pages of `aggregator serve` (docs/live.md) with headless Chromium.

    python docs/screenshot_live.py    # writes docs/wall.png and docs/moderate.png

The bundled example is collected and tagged in a temporary folder (your data/ is left alone); a
moderator pins a post, passes three questions to the chair and hides one post; the app is served on
127.0.0.1 with its clock in the middle of Session 2, and the wall is shot at a venue screen's size
(1920 x 1080), the moderation page signed in. Needs Debian's `chromium` (or CHROMIUM=/path/to/it)
and Playwright (pip install playwright; no browser download).

`serving(app)` (the app on a free port of 127.0.0.1, in a thread) is also what the browser tests use.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
TOKEN = "screenshot-token-not-a-secret"  # noqa: S105 - a throwaway server's, for the picture
WALL_SIZE = {"width": 1920, "height": 1080}
MODERATE_SIZE = {"width": 1280, "height": 1500}


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` on uvicorn on a free port of 127.0.0.1, in a thread; yields its base URL and stops
    the server when done."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):  # up to 10 s for it to start
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError("the app did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def sign_in(page: Any, base: str, who: str = "Sam (comms team)", token: str = TOKEN) -> None:
    page.goto(f"{base}/moderate")
    page.fill("#who", who)
    page.fill("#token", token)
    page.click("form.signin button")
    page.wait_for_selector("[data-card], .empty")


def prepare(folder: Path) -> tuple[Any, datetime]:
    """The example collected and tagged in `folder`, with a few decisions; its config, and a
    moment in the middle of Session 2."""
    from aggregator.config import load_config
    from docs.screenshot import build
    from storage.db import open_database
    from storage.moderation import Decision, record

    build(folder)
    config = load_config(folder / "config.toml")
    session = next(s for s in config.sessions if s.id == "session-2")
    moment = session.start + timedelta(minutes=38)
    engine = open_database(config.database_url)
    try:
        who = "Sam (comms team)"
        questions = ("100000000001000043", "100000000001000038", "100000000001000313")
        for post_id in questions:
            record(engine, Decision("question", who, ("mastodon", post_id)))
        record(engine, Decision("pin", who, ("mastodon", "100000000001000043")))
    finally:
        engine.dispose()
    return config, moment


def main() -> int:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("playwright is not installed: pip install playwright", file=sys.stderr)
        return 1
    if not Path(CHROMIUM).is_file():
        print(
            f"no Chromium at {CHROMIUM}: apt-get install chromium, or set CHROMIUM", file=sys.stderr
        )
        return 1
    from aggregator.web.app import create_app
    from docs.screenshot import FLAGS

    with tempfile.TemporaryDirectory() as tmp:
        config, moment = prepare(Path(tmp))
        app = create_app(config, TOKEN, clock=lambda: moment)
        with serving(app) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            wall = browser.new_page(viewport=WALL_SIZE)
            wall.goto(f"{base}/wall")
            wall.wait_for_selector(".posts .card")
            wall.screenshot(path=str(ROOT / "docs" / "wall.png"))
            moderate = browser.new_page(viewport=MODERATE_SIZE)
            sign_in(moderate, base)
            moderate.screenshot(path=str(ROOT / "docs" / "moderate.png"))
            browser.close()
    print("docs/wall.png, docs/moderate.png")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
