"""Posts' images, archived at collection time so the report (which never calls the network) can show them.

Opt-in with `[media] archive = true` (docs/report.md). After collecting, `archive_media` fetches each
stored image not archived yet, most engaged posts first, through the project's HTTP layer (timeouts,
a size cap, http(s) only, public addresses only), and keeps a thumbnail: at most THUMBNAIL pixels on its
longer side, re-encoded as JPEG from the pixels alone, so EXIF (camera, GPS position) and every other
metadata is left behind. Thumbnails live in a folder beside the database as `<sha256>.jpg`, with
`index.json` mapping each image URL to its file. Caps: bytes per image downloaded, images per run, total
size of the archive. Reruns fetch only what is missing; a failing image is a warning, never a failed
run, and is tried again on the next runs up to MAX_TRIES times. Thumbnails of posts since deleted,
forgotten or opted out are removed on the next run, archiving or not (`prune_media`).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import re
import socket
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from PIL import Image, ImageOps
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from aggregator import __version__
from aggregator.errors import AggregatorError
from aggregator.files import write_bytes, write_text
from aggregator.settings import MediaSettings
from aggregator.stop import StopFlag
from storage.db import beside_database
from storage.models import POST_TABLE

if TYPE_CHECKING:
    from aggregator.settings import Config
    from connectors.http import HttpClient

__all__ = [
    "Archive",
    "MediaError",
    "MediaSettings",
    "MediaSummary",
    "Thumbnail",
    "archive_counts",
    "archive_media",
    "media_folder",
    "prune_media",
    "thumbnail",
]

log = logging.getLogger(__name__)

POSTS = POST_TABLE
MiB = 1024 * 1024
THUMBNAIL = 480  # pixels on the longer side: sharp on a card at twice the density
QUALITY = 78
FORMATS = ("JPEG", "PNG", "GIF", "WEBP")  # the only decoders an untrusted image reaches
MAX_PIXELS = 40_000_000  # a larger image is refused before it is decoded (decompression bombs)
MAX_TRIES = 3  # runs an image that keeps failing is tried in
INDEX = "index.json"
FILE_NAME = re.compile(r"[0-9a-f]{64}\.jpg")
# Media types that are still images: Mastodon/Bluesky "image", X "photo", feeds' MIME types.
IMAGE_TYPES = re.compile(r"image|photo|image/(jpeg|png|gif|webp)", re.IGNORECASE)


class MediaError(AggregatorError):
    """One image could not be archived; the message says why in a few words."""


def media_folder(config: Config) -> Path:
    """Beside the SQLite file (`aggregator.db.media/`); for any other database, in the config's folder."""
    return beside_database(config.database_url, ".media") or config.base_dir / "aggregator.media"


def archive_counts(config: Config) -> dict[str, Any] | None:
    """What `status` says of the archive: thumbnails, their bytes, images given up on, the folder;
    None when nothing was ever archived."""
    archive = Archive(media_folder(config))
    if not archive.images and not archive.failed:
        return None
    given_up = sum(1 for url in archive.failed if not _due(archive, url))
    return {"images": len(archive.images), "bytes": archive.total_bytes, "failed": given_up,
            "folder": str(archive.folder)}  # fmt: skip


@dataclass(frozen=True)
class Thumbnail:
    data_uri: str  # data:image/jpeg;base64,…: the page embeds it, its CSP allows img-src data: only
    width: int
    height: int


class Archive:
    """The archive's index read back: which image URLs have a thumbnail, and that thumbnail."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.images: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("media archive index %s is unreadable (%s): starting afresh", folder, exc)
            return
        if isinstance(data, dict):
            self.images = {u: e for u, e in (data.get("images") or {}).items() if _entry_ok(e)}
            self.failed = dict(data.get("failed") or {})

    @property
    def total_bytes(self) -> int:
        return sum(int(e["bytes"]) for e in {e["file"]: e for e in self.images.values()}.values())

    def thumbnail(self, url: str | None) -> Thumbnail | None:
        """The archived thumbnail of an image URL; None when there is none (or its file is gone)."""
        entry = self.images.get(url or "")
        if entry is None:
            return None
        try:
            data = (self.folder / entry["file"]).read_bytes()
        except OSError:
            return None
        encoded = base64.b64encode(data).decode("ascii")
        return Thumbnail(f"data:image/jpeg;base64,{encoded}", entry["width"], entry["height"])

    def save(self) -> None:
        """The index, written atomically: a reader never sees half of it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        body = {"version": 1, "images": self.images, "failed": self.failed}
        write_text(self.folder / INDEX, json.dumps(body, ensure_ascii=False, indent=1))


def _entry_ok(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("file"), str)
        and FILE_NAME.fullmatch(entry["file"]) is not None
        and all(isinstance(entry.get(k), int) for k in ("width", "height", "bytes"))
    )


@dataclass
class MediaSummary:
    archived: int = 0  # thumbnails made in this run
    failed: int = 0  # images tried in this run that could not be archived (see warnings)
    waiting: int = 0  # images left for a later run by the per-run or total cap
    removed: int = 0  # thumbnails whose posts were deleted, forgotten or opted out since
    images: int = 0  # thumbnails in the archive after the run
    bytes: int = 0  # their size together
    warnings: list[str] = field(default_factory=list)


def thumbnail(data: bytes, size: int = THUMBNAIL) -> tuple[bytes, int, int]:
    """A JPEG thumbnail of an image's pixels only (no EXIF, ICC, XMP or comments), upright as its
    EXIF orientation says, transparency on white; (bytes, width, height).

    :raises MediaError: when the bytes are not a JPEG, PNG, GIF or WebP image, or it is too large.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data), formats=FORMATS) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise MediaError(f"image of {img.width}×{img.height} pixels is too large")
                img.draft("RGB", (size, size))  # JPEG: decode at a smaller scale, much faster
                upright = ImageOps.exif_transpose(img)
                upright.thumbnail((size, size))
                rgba = upright.convert("RGBA")
    except (
        OSError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise MediaError(f"not an image that can be read ({type(exc).__name__})") from None
    clean = Image.new("RGB", rgba.size, "white")  # a new image: none of the original's metadata
    clean.paste(rgba, mask=rgba.getchannel("A"))
    out = BytesIO()
    clean.save(out, "JPEG", quality=QUALITY, optimize=True, progressive=True)
    return out.getvalue(), clean.width, clean.height


def archive_media(
    engine: Engine,
    config: Config,
    http: HttpClient | httpx.Client | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> MediaSummary:
    """Archive the images of stored posts as the [media] settings say; nothing when archiving is off.

    With no `http`, a client that only connects to public addresses is made here (a hostile post
    cannot point the collector at the local network): never the run's client, which may reach an
    instance on the organisers' own network, but with the same versioned user agent (an
    `httpx.Client` given gets it too; an HttpClient keeps its own). `should_stop` is asked
    between images; a `StopFlag` also ends a retry wait (with StopRequested, the index saved
    first).
    """
    from connectors.http import as_http_client, user_agent

    settings = config.media or MediaSettings()
    if not settings.archive:  # what was archived before still follows deletions and opt-outs
        return MediaSummary(removed=prune_media(engine, config))
    summary = MediaSummary()
    archive = Archive(media_folder(config))
    wanted = dict(_image_urls(engine, config))
    summary.removed = _prune(archive, wanted)
    todo = [u for u in wanted if u not in archive.images and _due(archive, u)]
    sleep = should_stop.sleep if isinstance(should_stop, StopFlag) else None
    with ExitStack() as stack:
        if http is None:
            http = stack.enter_context(_public_only_client())
        client, _ = as_http_client(
            http, sleep=sleep, max_bytes=settings.max_image_bytes, max_attempts=2, deadline=60.0,
            user_agent=user_agent(__version__),
        )  # fmt: skip
        stack.callback(archive.save)  # also when a stop or an error ends the run early
        _fetch_all(client, archive, todo, wanted, settings, summary, should_stop)
    summary.images = len(archive.images)
    summary.bytes = archive.total_bytes
    log.info("media: %d archived, %d failed, %d waiting, %d removed; %d images (%d bytes) kept",
             summary.archived, summary.failed, summary.waiting, summary.removed, summary.images,
             summary.bytes)  # fmt: skip
    return summary


def _fetch_all(
    client: HttpClient,
    archive: Archive,
    todo: list[str],
    wanted: Mapping[str, str],
    settings: MediaSettings,
    summary: MediaSummary,
    should_stop: Callable[[], bool] | None,
) -> None:
    total = archive.total_bytes
    for n, url in enumerate(todo):
        if n >= settings.max_images_per_run or (should_stop is not None and should_stop()):
            summary.waiting = len(todo) - n
            return
        try:
            data, width, height = thumbnail(_download(client, url, settings.max_image_bytes))
        except MediaError as exc:
            _failed(archive, url, wanted[url], str(exc), summary)
            continue
        if total + len(data) > settings.max_total_bytes:
            summary.waiting = len(todo) - n
            summary.warnings.append(
                f"media archive is full ({total:,} of {settings.max_total_bytes:,} bytes): "
                f"{summary.waiting} image(s) not archived; raise [media] max_total_bytes to keep more"
            )
            log.warning("%s", summary.warnings[-1])
            return
        name = f"{hashlib.sha256(data).hexdigest()}.jpg"
        path = archive.folder / name
        if not path.exists():
            archive.folder.mkdir(parents=True, exist_ok=True)
            write_bytes(path, data)
            total += len(data)
        archive.images[url] = {"file": name, "width": width, "height": height, "bytes": len(data)}
        archive.failed.pop(url, None)
        summary.archived += 1


def _download(client: HttpClient, url: str, cap: int) -> bytes:
    """The image's bytes. :raises MediaError: for any failure, in a few words."""
    from connectors.http import HttpError

    try:
        resp = client.get(url, headers={"Accept": "image/jpeg,image/png,image/gif,image/webp"})
    except HttpError as exc:
        raise MediaError(str(exc)) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # e.g. too many redirects
        raise MediaError(f"{type(exc).__name__} fetching it") from None
    if len(resp.content) > cap:  # a client passed in may have a larger cap of its own
        raise MediaError(f"image is over the {cap:,}-byte cap")
    return resp.content


def _failed(archive: Archive, url: str, post: str, why: str, summary: MediaSummary) -> None:
    from connectors.http import safe_url

    tries = int((archive.failed.get(url) or {}).get("tries", 0)) + 1
    archive.failed[url] = {"error": why, "tries": tries}
    summary.failed += 1
    again = "tried again next run" if tries < MAX_TRIES else "not tried again"
    summary.warnings.append(f"image {safe_url(url)} of post {post} not archived: {why} ({again})")
    log.warning("%s", summary.warnings[-1])


def _due(archive: Archive, url: str) -> bool:
    entry = archive.failed.get(url)
    return not isinstance(entry, dict) or int(entry.get("tries", 0)) < MAX_TRIES


def _image_urls(engine: Engine, config: Config) -> Iterator[tuple[str, str]]:
    """(image URL, "platform/post id") of every visible original post, most engaged first."""
    from storage.queries import opted_out_filter

    engagement = (
        func.coalesce(POSTS.c.likes, 0)
        + 2 * func.coalesce(POSTS.c.reposts, 0)
        + func.coalesce(POSTS.c.replies, 0)
    )
    stmt = select(POSTS.c.platform, POSTS.c.post_id, POSTS.c.media).where(
        POSTS.c.deleted_at.is_(None), POSTS.c.repost_of.is_(None)
    )
    excluded = opted_out_filter(config.privacy.opt_out).exclude_authors
    if excluded:
        stmt = stmt.where(func.lower(func.ltrim(POSTS.c.author, "@")).not_in(excluded))
    stmt = stmt.order_by(engagement.desc(), POSTS.c.created_at.desc(), POSTS.c.id)
    with engine.connect() as conn:
        for row in conn.execute(stmt.execution_options(yield_per=1000)):
            for item in row.media or []:
                url = _image_url(item)
                if url:
                    yield url, f"{row.platform}/{row.post_id}"


def _image_url(item: Any) -> str | None:
    """The URL of a still image worth archiving; None for video, audio or anything not http(s)."""
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        return None
    kind = item.get("type")
    if kind is not None and not (isinstance(kind, str) and IMAGE_TYPES.fullmatch(kind.strip())):
        return None
    url = item["url"].strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    ok = parts.scheme.lower() in ("http", "https") and parts.hostname and len(url) <= 2000
    return url if ok and not any(c.isspace() for c in url) else None


def prune_media(engine: Engine, config: Config) -> int:
    """Remove the thumbnails no visible post shows any more (its post deleted, forgotten or opted
    out), whether or not archiving is on; how many. `archive_media` does it on every run."""
    archive = Archive(media_folder(config))
    if not archive.folder.is_dir():
        return 0
    removed = _prune(archive, dict(_image_urls(engine, config)))
    archive.save()
    return removed


def _prune(archive: Archive, wanted: Mapping[str, str]) -> int:
    """Forget thumbnails no visible post shows any more; delete files nothing points to."""
    gone = [u for u in archive.images if u not in wanted]
    for url in gone:
        del archive.images[url]
    archive.failed = {u: e for u, e in archive.failed.items() if u in wanted}
    kept = {e["file"] for e in archive.images.values()}
    if archive.folder.is_dir():
        for path in archive.folder.iterdir():
            if FILE_NAME.fullmatch(path.name) and path.name not in kept:
                path.unlink(missing_ok=True)
    return len(gone)


def _public_only_client() -> httpx.Client:
    """An httpx client that refuses, before connecting, any host that is not a public address:
    loopback, private, link-local (cloud metadata) and reserved ranges; redirects included."""
    from connectors.http import DEFAULT_TIMEOUT

    return httpx.Client(timeout=DEFAULT_TIMEOUT, follow_redirects=True,
                        event_hooks={"request": [_refuse_private]})  # fmt: skip


def _refuse_private(request: httpx.Request) -> None:
    host = request.url.host
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, request.url.port or 443, proto=socket.IPPROTO_TCP)
        except OSError:
            raise MediaError(f"{host}: the name does not resolve") from None
        addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    if not addresses or not all(a.is_global for a in addresses):
        raise MediaError(f"{host} is not a public address (refused)")
