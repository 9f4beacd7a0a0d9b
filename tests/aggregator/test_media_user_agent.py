"""The media archive says what it is like every other request: the versioned user agent, not the
'unknown' one of a client never told its version."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import httpx
import respx

from aggregator import __version__
from aggregator.media import MediaSettings, archive_media
from connectors.base import Page, Post
from connectors.http import USER_AGENT, user_agent
from storage.queries import save_page
from tests.helpers import image_bytes

IMAGE = "https://files.example.org/stage.png"


def test_images_are_fetched_with_the_versioned_user_agent(engine, config):
    when = config.sessions[0].start + timedelta(minutes=5)
    media = [{"url": IMAGE, "type": "image", "alt": "the stage"}]
    save_page(engine, "test", Page([Post("mastodon", "m1", when, "ann@example.org",
                                         "Standing room only", media=media)]))  # fmt: skip
    agents = []

    def serve(request: httpx.Request) -> httpx.Response:
        agents.append(request.headers["User-Agent"])
        return httpx.Response(200, content=image_bytes("PNG", (64, 48)))

    archiving = dataclasses.replace(config, media=MediaSettings(archive=True))
    with respx.mock(assert_all_called=True) as router, httpx.Client() as client:
        router.get(IMAGE).mock(side_effect=serve)
        summary = archive_media(engine, archiving, http=client)
    assert summary.archived == 1
    assert agents == [user_agent(__version__)] and agents != [USER_AGENT]
