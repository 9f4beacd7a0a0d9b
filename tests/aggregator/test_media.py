"""The media archive (aggregator/media.py) and photos in the story: images fetched from a server on
127.0.0.1 that serves real PNG and JPEG bytes made here with Pillow, thumbnails kept beside a real
SQLite database, and the report embedding them with their alt text."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import update

from aggregator.config import ConfigError, load_config, read_media_settings
from aggregator.media import (
    Archive,
    MediaSettings,
    archive_counts,
    archive_media,
    media_folder,
)
from aggregator.pipeline import analyse, tag
from connectors.base import Page, Post
from reports.render import data_image, write_report
from reports.story import build_story
from storage.models import Assignment, PostRow
from storage.queries import save_page
from tests.helpers import image_bytes, serving

GPS_IFD = 0x8825
HOSTILE_ALT = '"><script>alert(1)</script><img src=x onerror="alert(2)">'
TEXTS = [
    "Helen Bevan opening the day with a call to action",
    "Standing room only for the equality session",
    "Ideas from the flip chart about carers as partners",
    "Lunchtime conversations about social prescribing pilots",
    "Closing thoughts on co-production from the panel",
]
ORIENTATION = 0x0112


@pytest.fixture
def files() -> dict[str, bytes]:
    return {}


@pytest.fixture
def site(files):
    with serving(files) as running:
        yield running


def archiving(config, **caps):
    return dataclasses.replace(config, media=MediaSettings(archive=True, **caps))


def store(engine, config, *media_lists, minutes=5, **post_fields):
    """One post per media list, inside the first session, liked more the earlier it comes."""
    when = config.sessions[0].start + timedelta(minutes=minutes)
    posts = [
        Post("mastodon", f"m{n}", when, f"user{n}@example.org", TEXTS[n % len(TEXTS)],
             url=f"https://example.org/@u/{n}", likes=100 - n, media=media, **post_fields)
        for n, media in enumerate(media_lists)
    ]  # fmt: skip
    save_page(engine, "test", Page(posts))


def run(engine, config, **kw):
    with httpx.Client() as client:
        return archive_media(engine, config, http=client, **kw)


def test_images_become_small_jpegs_without_metadata_beside_the_database(
    engine, config, files, site
):
    server, base = site
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[ORIENTATION] = 6  # stored sideways: shown rotated 90° clockwise
    exif.get_ifd(GPS_IFD)[2] = (51.0, 30.0, 0.0)  # GPSLatitude
    files["/photo.jpg"] = image_bytes("JPEG", (1600, 1000), exif=exif)
    files["/chart.png"] = image_bytes("PNG", (300, 200))
    store(engine, config, [{"url": f"{base}/photo.jpg", "type": "image", "alt": "The stage"}],
          [{"url": f"{base}/chart.png", "type": "image", "alt": None}])  # fmt: skip
    config = archiving(config)

    summary = run(engine, config)

    assert (summary.archived, summary.failed, summary.images) == (2, 0, 2)
    folder = media_folder(config)
    assert folder.parent == Path(config.database_url.removeprefix("sqlite:///")).parent
    stored = sorted(folder.glob("*.jpg"))
    assert len(stored) == 2 and summary.bytes == sum(p.stat().st_size for p in stored)
    sizes = {}
    for path in stored:
        data = path.read_bytes()
        assert b"SecretCam" not in data and b"Exif" not in data
        with Image.open(path) as img:
            assert img.format == "JPEG" and not img.getexif() and "icc_profile" not in img.info
            sizes[path.name] = img.size
    assert sorted(sizes.values()) == [(300, 200), (300, 480)]  # the photo upright, longer side 480
    archive = Archive(folder)
    assert archive.thumbnail(f"{base}/photo.jpg").data_uri.startswith("data:image/jpeg;base64,")

    again = run(engine, config)  # idempotent: nothing fetched twice
    assert (again.archived, again.images) == (0, 2)
    assert server.hits == Counter({"/photo.jpg": 1, "/chart.png": 1})


def test_archiving_is_off_unless_the_config_turns_it_on(engine, config, files, site):
    server, base = site
    files["/a.png"] = image_bytes("PNG", (50, 50))
    store(engine, config, [{"url": f"{base}/a.png", "type": "image"}])
    assert run(engine, config).archived == 0
    assert not server.hits and not media_folder(config).exists()
    assert archive_counts(config) is None


def test_caps_per_image_per_run_and_in_total_leave_the_rest_for_later(engine, config, files, site):
    server, base = site
    for n in range(4):
        files[f"/{n}.png"] = image_bytes("PNG", (200 + n, 200))
    files["/big.jpg"] = image_bytes("JPEG", (1200, 1200))
    store(engine, config, *([{"url": f"{base}/{n}.png", "type": "image"}] for n in range(4)),
          [{"url": f"{base}/big.jpg", "type": "image"}])  # fmt: skip

    first = run(engine, archiving(config, max_images_per_run=2,
                                  max_image_bytes=len(files["/big.jpg"]) - 1))  # fmt: skip
    assert (first.archived, first.waiting) == (2, 3)
    assert server.hits == Counter({"/0.png": 1, "/1.png": 1})  # the most liked first

    second = run(engine, archiving(config, max_image_bytes=len(files["/big.jpg"]) - 1))
    assert (second.archived, second.failed, second.images) == (2, 1, 4)
    assert any("big.jpg" in w and "cap" in w for w in second.warnings)


def test_the_archive_stops_at_its_total_size_and_says_how_to_keep_more(engine, config, files, site):
    _, base = site
    for n in range(3):
        files[f"/{n}.png"] = image_bytes("PNG", (400, 300 + n))
    store(engine, config, *([{"url": f"{base}/{n}.png", "type": "image"}] for n in range(3)))
    first = run(engine, archiving(config, max_images_per_run=1))
    size = first.bytes

    full = run(engine, archiving(config, max_total_bytes=size + 10))
    assert (full.archived, full.waiting, full.images) == (0, 2, 1)
    assert any("max_total_bytes" in w for w in full.warnings)


def test_a_failing_image_is_a_warning_tried_again_up_to_three_runs(engine, config, files, site):
    server, base = site
    files["/notes.png"] = b"this is not an image at all"
    files["/ok.png"] = image_bytes("PNG", (60, 40))
    store(engine, config, [{"url": f"{base}/gone.png", "type": "image"}],
          [{"url": f"{base}/notes.png", "type": "image"}], [{"url": f"{base}/ok.png", "type": "image"}])  # fmt: skip
    config = archiving(config)

    summaries = [run(engine, config) for _ in range(4)]

    assert [(s.archived, s.failed) for s in summaries] == [(1, 2), (0, 2), (0, 2), (0, 0)]
    assert server.hits["/gone.png"] == 3 and server.hits["/notes.png"] == 3
    warnings = summaries[0].warnings
    assert any("gone.png" in w and "404" in w and "mastodon/m0" in w for w in warnings)
    assert any("notes.png" in w and "not an image" in w for w in warnings)
    assert all("\n" not in w for w in warnings)
    assert "not tried again" in " ".join(summaries[2].warnings)
    counts = archive_counts(config)
    assert counts is not None and (counts["images"], counts["failed"]) == (1, 2)
    assert counts["bytes"] == summaries[-1].bytes > 0


def test_a_decompression_bomb_is_refused_before_it_is_decoded(engine, config, files, site):
    _, base = site
    bomb = BytesIO()
    Image.new("1", (9000, 9000)).save(bomb, "PNG")  # 81 million pixels in a few kilobytes
    files["/bomb.png"] = bomb.getvalue()
    store(engine, config, [{"url": f"{base}/bomb.png", "type": "image"}])
    summary = run(engine, archiving(config))
    assert (summary.archived, summary.failed) == (0, 1)
    assert "9000×9000 pixels is too large" in summary.warnings[0]


def test_video_links_and_non_http_urls_are_never_fetched(engine, config, files, site):
    server, base = site
    store(engine, config, [{"url": f"{base}/clip.mp4", "type": "video"},
                           {"url": "file:///etc/passwd", "type": "image"},
                           {"url": "javascript:alert(1)", "type": "image"}])  # fmt: skip
    summary = run(engine, archiving(config))
    assert (summary.archived, summary.failed) == (0, 0) and not server.hits


def test_the_default_client_refuses_local_addresses(engine, config, files, site):
    server, base = site
    files["/inside.png"] = image_bytes("PNG", (40, 40))
    store(engine, config, [{"url": f"{base}/inside.png", "type": "image"}])
    summary = archive_media(engine, archiving(config))  # no client given: the public-only one
    assert summary.failed == 1 and "not a public address" in summary.warnings[0]
    assert not server.hits


def test_thumbnails_of_deleted_posts_are_removed_on_the_next_run_archiving_or_not(
    engine, config, files, site
):
    _, base = site
    files["/a.png"], files["/b.png"] = image_bytes("PNG", (50, 50)), image_bytes("PNG", (60, 50))
    store(engine, config, [{"url": f"{base}/a.png", "type": "image"}],
          [{"url": f"{base}/b.png", "type": "image"}])  # fmt: skip
    config = archiving(config)
    assert run(engine, config).images == 2
    with engine.begin() as conn:
        posts = PostRow.__table__
        conn.execute(
            update(posts).where(posts.c.post_id == "m0").values(deleted_at=datetime.now(UTC))
        )

    summary = run(engine, config)

    assert (summary.removed, summary.images) == (1, 1)
    assert len(list(media_folder(config).glob("*.jpg"))) == 1
    assert Archive(media_folder(config)).thumbnail(f"{base}/a.png") is None

    with engine.begin() as conn:  # archiving turned off since: a deletion still removes its image
        conn.execute(
            update(posts).where(posts.c.post_id == "m1").values(deleted_at=datetime.now(UTC))
        )
    assert archive_media(engine, dataclasses.replace(config, media=None)).removed == 1
    assert not list(media_folder(config).glob("*.jpg"))


def test_media_settings_are_validated_with_the_key_named(project):
    cfg = project / "config.toml"
    cfg.write_text(
        cfg.read_text() + '\n[media]\narchive = "yes"\nmax_images_per_run = 0\nsize = 3\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    problems = " ".join(caught.value.problems)
    assert "media.archive" in problems and "media.max_images_per_run" in problems
    assert "media.size: unknown key" in problems
    settings, problems = read_media_settings({"archive": True, "max_total_bytes": 1_000_000})
    assert settings == MediaSettings(archive=True, max_total_bytes=1_000_000) and not problems


def report_of(engine, config, tmp_path: Path) -> dict[str, str]:
    tag(engine, config)
    analyse(engine)
    with engine.begin() as conn:
        conn.execute(update(Assignment.__table__).values(highlight=True))
    files = write_report(build_story(engine, config), tmp_path / "site")
    return {fmt: path.read_text(encoding="utf-8") for fmt, path in files.items()}


def test_cards_show_archived_photos_with_their_alt_text_or_say_there_is_none(
    engine, config, files, site, tmp_path
):
    _, base = site
    files["/stage.png"], files["/room.png"] = (
        image_bytes("PNG", (640, 480)),
        image_bytes("PNG", (480, 640)),
    )
    store(engine, config, [{"url": f"{base}/stage.png", "type": "image", "alt": "Helen Bevan on stage"}],
          [{"url": f"{base}/room.png", "type": "image", "alt": ""},
           {"url": f"{base}/stage.png", "type": "image", "alt": HOSTILE_ALT}],
          [{"url": f"{base}/never-archived.png", "type": "image", "alt": "A flip chart of ideas"}])  # fmt: skip
    config = archiving(config)
    assert run(engine, config).archived == 2

    out = report_of(engine, config, tmp_path)
    page = out["html"]

    imgs = re.findall(r"<img ([^>]*)>", page)
    assert len(imgs) >= 2 and all(re.search(r'src="data:image/jpeg;base64,[^"]+"', i) for i in imgs)
    alts = [re.search(r'alt="([^"]*)"', i)[1] for i in imgs]
    assert "Helen Bevan on stage" in alts and "Image without a description" in alts
    assert 'alt=""' not in page
    assert "<script" not in page and 'onerror="' not in page  # alt text stays text
    assert HOSTILE_ALT.replace('"', "&#34;").replace("<", "&lt;").replace(">", "&gt;") in page
    assert re.search(
        r'<figcaption aria-hidden="true"[^>]*>Image without a description</figcaption>', page
    )
    # not archived: its description in words and a link to the post
    card = page[page.index("A flip chart of ideas") - 400 :]
    assert 'href="https://example.org/@u/2"' in card[:900] and "see it in the post" in card[:900]
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', page)[1]
    assert "img-src data:;" in csp and "default-src 'none'" in csp
    story = json.loads(out["json"])
    shown = [m for p in story["parts"] for h in p["highlights"] for m in h["media"]]
    assert {m["alt"] for m in shown if m["thumbnail"]} == {
        "Helen Bevan on stage",
        None,
        HOSTILE_ALT,
    }
    assert [m["thumbnail"] for m in shown if m["alt"] == "A flip chart of ideas"] == [None]
    assert "data:image" not in out["markdown"] and "A flip chart of ideas" in out["markdown"]


def test_without_an_archive_cards_give_the_alt_text_and_a_link_to_the_post(
    engine, config, tmp_path
):
    store(
        engine, config, [{"url": "https://cdn.example/x.png", "type": "image", "alt": "Two nurses"}]
    )
    page = report_of(engine, config, tmp_path)["html"]
    assert "<img" not in page
    assert "Two nurses" in page
    assert re.search(r'<a href="https://example.org/@u/0"[^>]*>see it in the post', page)


def test_only_jpeg_data_uris_become_image_sources():
    jpeg = "data:image/jpeg;base64,/9j/4AAQSkZJRg=="
    assert data_image(jpeg) == jpeg
    for other in (
        "data:image/svg+xml;base64,PHN2Zz4=",
        "https://evil.example/pixel.png",
        "javascript:alert(1)",
        'data:image/jpeg;base64,AA" onerror="x',
        None,
    ):
        assert data_image(other) == ""
