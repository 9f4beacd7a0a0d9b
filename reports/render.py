"""Story -> index.html, report.md and story.json. Every template autoescapes: HTML with Jinja's HTML
escaping, Markdown through `md_escape`; Markup wraps only sanitiser output and our own link syntax."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from aggregator.clock import EventClock
from aggregator.errors import OutputError
from aggregator.files import write_text
from reports import charts, narrative
from reports.model import Review
from reports.story import PostView, Story
from reports.text import clean_text, sanitise_html

__all__ = [
    "JSON_SCHEMA",
    "ORGANISER_ONLY",
    "REPORT_FILES",
    "file_digests",
    "html_environment",
    "markdown_environment",
    "md_escape",
    "md_link",
    "post_label",
    "report_files",
    "safe_url",
    "story_dict",
    "templates_digest",
    "write_report",
    "write_review",
]

JSON_SCHEMA = 2  # bump when story.json changes shape (docs/report.md)
# Markdown syntax anywhere in a line (emphasis, code, links, tables, strikethrough, escapes) ...
MD_INLINE = re.compile(r"([\\`*_{}\[\]|~])")
# ... and only where a line starts (headings, lists, quotes, setext underlines, ordered lists).
MD_LINE_START = re.compile(r"^([#+\-=>])|^(\d+)([.)])")
ENTITY = re.compile(r"&(?=#?\w+;)")
DATA_IMAGE = re.compile(r"data:image/jpeg;base64,[A-Za-z0-9+/]+={0,2}")
# Fields only organisers see, by where they sit in story.json (a list: in each of its items): left
# out of every file when [report] audience = "public". The templates test story.audience the same way.
ORGANISER_ONLY = {"overview": ("quality", "redacted"), "parts": ("technical", "technical_total")}
PLATFORMS = {
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "x": "X",
    "feed": "a feed",
    "twitter": "Twitter",
}


def md_escape(value: object) -> str:
    """Text that Markdown renders literally: no links, emphasis, headings, tables or raw HTML."""
    if isinstance(value, Markup):  # already safe: our own link syntax, built from a checked URL
        return str(value)
    text = " ".join(
        clean_text("" if value is None else value).split()
    )  # a newline ends a list item
    text = MD_INLINE.sub(r"\\\1", ENTITY.sub("&amp;", text))
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return MD_LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", text)


def safe_url(value: object) -> str | None:
    """The URL if it is http(s), with characters that could end a link percent-encoded; else None."""
    url = clean_text(value).strip()
    if not re.match(r"https?://[^/\s]", url, re.IGNORECASE):
        return None
    return quote(url, safe=":/?#[]@!$&'*+,;=%-._~")


def md_link(value: object, label: str | None = None) -> Markup:
    """`[label](url)`, or an autolink `<url>` without a label; nothing when the URL is not http(s)."""
    url = safe_url(value)
    if not url:
        return Markup("")
    # safe: safe_url allowed only http(s) and percent-encoded every character that could end the link
    return Markup(f"[{md_escape(label)}]({url})" if label else f"<{url}>")  # noqa: S704


def data_image(value: object) -> str:
    """An archived thumbnail's data: URI, or "" for anything else: the only image source the page
    uses, and the only one its Content-Security-Policy allows."""
    text = value if isinstance(value, str) else ""
    return text if DATA_IMAGE.fullmatch(text) else ""


def post_label(post: PostView) -> str:
    """'post by @alice at 13:25' ('… on Fri 25 Nov at 13:25' away from the event's first day):
    link text that says whose post it is and when, also read aloud out of context."""
    return narrative.post_label(post.platform, post.author, post.author_name, post.when)


def sanitised(html: object) -> Markup:
    """Post HTML through the allowlist sanitiser: the only post content ever marked safe."""
    return Markup(sanitise_html(str(html or "")))  # noqa: S704 - nh3 output, allowlisted tags only


def short_url(value: object, limit: int = 60) -> str:
    """'example.org/a/long/path…' for showing a link; the href keeps the whole URL."""
    parts = urlsplit(clean_text(value))
    text = (parts.netloc.removeprefix("www.") + parts.path.rstrip("/")) or clean_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(form: Callable[[EventClock, datetime], str]) -> Callable[[datetime], str]:
    """A template filter writing a view's time in one of the clock's forms. A view (reports.model)
    holds its times in the event's zone already, so the clock is the time's own zone's."""
    return lambda value: form(EventClock(value.tzinfo or UTC), value)


# The event clock's forms, for the templates: never strftime or isoformat in a template.
TIME_FILTERS = {
    "iso": _shown(EventClock.iso),  # 2016-11-28T14:05:00+00:00: a <time datetime="">
    "iso_date": _shown(lambda clock, value: clock.day_of(value).isoformat()),  # 2016-11-28
    "time_of_day": _shown(EventClock.time_of_day),  # 14:05
    "full": _shown(EventClock.full),  # 28 November 2016 at 14:05
}


def _html_finalize(value: Any) -> Any:
    if value is None:
        return ""
    return clean_text(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def _environment(**options: Any) -> Environment:
    env = Environment(  # noqa: S701 - autoescape is chosen by each caller below
        loader=PackageLoader("reports", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        **options,
    )
    env.filters.update(safe_url=safe_url, md_link=md_link, short_url=short_url, sanitised=sanitised,
                       data_image=data_image, post_label=post_label,
                       platform=lambda p: PLATFORMS.get(str(p).lower(), str(p)),
                       **TIME_FILTERS)  # fmt: skip
    env.globals.update(day_chart=charts.day_chart, sparkline=charts.sparkline,
                       sentiment_bar=charts.sentiment_bar)  # fmt: skip
    return env


@cache  # one compiled set of templates per process: a report is written with them, not from scratch
def html_environment() -> Environment:
    """HTML-escapes every expression (and drops control characters) in every template, whatever its name."""
    return _environment(autoescape=select_autoescape(default=True, default_for_string=True),
                        finalize=_html_finalize)  # fmt: skip


@cache
def markdown_environment() -> Environment:
    # finalize runs on every {{ expression }}: Markdown's equivalent of autoescape.
    return _environment(autoescape=False, finalize=md_escape)


def _plain(value: Any, clock: EventClock) -> Any:
    if isinstance(value, datetime):
        return clock.iso(value)
    if isinstance(value, dict):
        return {k: _plain(v, clock) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, clock) for v in value]
    return value


def story_dict(story: Story) -> dict[str, Any]:
    """The story as plain JSON data, the same structure the templates read (docs/report.md); for
    a public audience without what only the organisers see (ORGANISER_ONLY). Times are in the
    event's zone with its offset, to the second."""
    data = _plain(dataclasses.asdict(story), EventClock(ZoneInfo(story.timezone)))
    if story.audience == "public":
        for where, keys in ORGANISER_ONLY.items():
            for item in data[where] if isinstance(data[where], list) else [data[where]]:
                for key in keys:
                    item.pop(key, None)
    return {"schema": JSON_SCHEMA, **data}


def _write(folder: Path, texts: dict[Path, str], what: str) -> None:
    """Each text into its file, atomically (a reader never sees half a file), `folder` made first.

    :raises OutputError: naming `what` when the folder or a file cannot be written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, text in texts.items():
            write_text(path, text)
    except OSError as exc:
        raise OutputError(f"cannot write {what}: {exc.strerror or exc}") from exc


REPORT_FILES = {"html": "index.html", "markdown": "report.md", "json": "story.json"}


def report_files(output: Path) -> dict[str, Path]:
    """The report's files in `output`, by format."""
    return {fmt: output / name for fmt, name in REPORT_FILES.items()}


@cache
def templates_digest() -> str:
    """A digest of every file in reports/templates (the templates and the style sheet they inline)
    and of story.json's schema: a story is rendered again when one changed since it was written
    (aggregator.pipeline)."""
    digest = hashlib.sha256(f"schema {JSON_SCHEMA}".encode())
    folder = package_files("reports") / "templates"
    for item in sorted(folder.iterdir(), key=lambda t: t.name):
        if item.is_file():
            digest.update(f"\0{item.name}\0".encode() + item.read_bytes())
    return digest.hexdigest()


def file_digests(paths: Mapping[str, Path]) -> dict[str, str | None]:
    """Each file's SHA-256, by the same keys; None for one missing or unreadable."""
    digests: dict[str, str | None] = {}
    for key, path in paths.items():
        try:
            digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            digests[key] = None
    return digests


def write_report(story: Story, output: Path) -> dict[str, Path]:
    """Write index.html, report.md and story.json into `output`; returns {format: path}. All three
    are rendered before any is written.

    :raises OutputError: when the folder or a file cannot be written.
    """
    sessions = [(p.start, p.end, p.title, p.key) for p in story.sessions if p.start and p.end]
    files = report_files(output)
    html = html_environment().get_template("report.html.j2")
    markdown = markdown_environment().get_template("report.md.j2")
    texts = {
        files["html"]: html.render(story=story, sessions=sessions),
        files["markdown"]: markdown.render(story=story, sessions=sessions),
        files["json"]: json.dumps(story_dict(story), ensure_ascii=False, indent=1) + "\n",
    }
    _write(output, texts, f"the report into {output}")
    return files


def write_review(review: Review, path: Path) -> Path:
    """Write the organisers' review page (`aggregator report --review`) to `path`: autoescaped
    like the story, under the same Content-Security-Policy.

    :raises OutputError: when it cannot be written.
    """
    page = html_environment().get_template("review.html.j2").render(review=review)
    _write(path.parent, {path: page}, f"the review page {path}")
    return path
