"""Story -> files. Every template autoescapes: HTML with Jinja's HTML escaping, Markdown with ours."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from reports.story import Story

__all__ = [
    "html_environment",
    "markdown_environment",
    "md_escape",
    "md_link",
    "safe_url",
    "write_report",
]

# Characters that start Markdown syntax anywhere in a line, plus raw HTML's angle brackets.
MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def md_escape(value: object) -> str:
    """Text that Markdown renders literally: no links, emphasis, headings or raw HTML from posts."""
    if isinstance(
        value, Markup
    ):  # already made safe by us (a template literal or sanitiser output)
        return str(value)
    text = CONTROL.sub("", "" if value is None else str(value))
    text = " ".join(text.split())  # a post's line breaks would end a list item
    text = MD_SPECIAL.sub(r"\\\1", text)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def safe_url(value: object) -> str | None:
    """The URL if it is http(s), with characters that could end a link percent-encoded; else None."""
    url = CONTROL.sub("", str(value or "")).strip()
    if not re.match(r"https?://", url, re.IGNORECASE):
        return None
    return quote(url, safe=":/?#[]@!$&'*+,;=%-._~")


def md_link(value: object) -> Markup:
    """An autolink `<url>` for Markdown, or nothing when the URL is not http(s)."""
    url = safe_url(value)
    # safe: safe_url allowed only http(s) and percent-encoded every character that could end the link
    return Markup(f"<{url}>") if url else Markup("")  # noqa: S704


def _environment(**options: object) -> Environment:
    env = Environment(  # noqa: S701 - autoescape is chosen by each caller below
        loader=PackageLoader("reports", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        **options,  # type: ignore[arg-type]
    )
    env.filters["safe_url"] = safe_url
    env.filters["md_link"] = md_link
    return env


def html_environment() -> Environment:
    return _environment(autoescape=select_autoescape(default=True, default_for_string=True))


def markdown_environment() -> Environment:
    # finalize runs on every {{ expression }}: Markdown's equivalent of autoescape.
    return _environment(autoescape=False, finalize=md_escape)


def write_report(story: Story, output: Path) -> dict[str, Path]:
    """Write index.html and report.md into `output`; returns {format: path}. Files replace
    the old ones atomically, so a reader never sees half a report."""
    output.mkdir(parents=True, exist_ok=True)
    files = {
        "html": ("index.html", html_environment().get_template("report.html.j2")),
        "markdown": ("report.md", markdown_environment().get_template("report.md.j2")),
    }
    written: dict[str, Path] = {}
    for fmt, (name, template) in files.items():
        path = output / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(template.render(story=story), encoding="utf-8")
        tmp.replace(path)
        written[fmt] = path
    return written
