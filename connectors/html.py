"""Post HTML -> plain text (for search and export) and -> sanitised HTML (nh3 allowlist)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

__all__ = [
    "HASHTAG_RE",
    "LINK_RE",
    "html_to_text",
    "links_in_html",
    "links_in_text",
    "sanitize_html",
]

HASHTAG_RE = re.compile(r"(?:^|(?<=[^\w&/]))[#＃](\w+)")
# One run of characters that may be in a URL: no space, quote, angle bracket, control character or
# invisible formatting (zero-width, bidi) character. One greedy class, nothing after it: linear.
LINK_RE = re.compile(
    r"https?://[^\s<>\"'\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+"
)
# Sentence punctuation a URL does not end with: "(see https://x.org/a)." links to https://x.org/a
TRAILING = set(".,;:!?'\"`*_~…‥。、，；：！？»›”’")
BARE_AMP_RE = re.compile(r"&(?![#A-Za-z0-9]{1,32};)")  # a bounded look ahead: linear
CLOSING = {")": "(", "]": "[", "}": "{", "）": "（", "」": "「", "』": "『", "】": "【", "》": "《"}
BLOCK_TAGS = {"p", "div", "blockquote", "li", "ul", "ol", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
SKIP_TAGS = {"script", "style", "template", "head", "title"}
SAFE_TAGS = BLOCK_TAGS | {
    "br",
    "a",
    "span",
    "em",
    "strong",
    "b",
    "i",
    "u",
    "s",
    "del",
    "code",
    "img",
}
SAFE_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}}
SAFE_CLASSES = {"a": {"mention", "hashtag", "u-url"}, "span": {"invisible", "ellipsis", "h-card"}}


class _TextParser(HTMLParser):
    """Collects text, turning <br> and block ends into line breaks; skips script and style."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.hrefs: list[tuple[str, str]] = []  # (href, class + rel), for links_in_html

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIP_TAGS:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a":
            found = dict(attrs)
            kind = f"{found.get('class') or ''} {found.get('rel') or ''}"
            self.hrefs.append(((found.get("href") or "").strip(), kind))

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _parse(html: str) -> _TextParser:
    parser = _TextParser()
    parser.feed(_well_formed(html or ""))
    parser.close()
    return parser


def _well_formed(html: str) -> str:
    """`html` as nh3 (html5ever, linear) re-writes it, keeping what `_TextParser` reads: html.parser
    reads hostile markup such as "<a <a <a …" in quadratic time (60 kB took 80 s), well-formed
    markup in linear time."""
    return nh3.clean(
        _bare_amps(html),
        tags=BLOCK_TAGS | {"br", "a"},
        clean_content_tags=SKIP_TAGS,
        attributes={"a": {"href", "class", "rel"}},
        link_rel=None,
    )


def _bare_amps(html: str) -> str:
    """ "&" that starts no character reference written "&amp;": nh3 is slow on long runs of them."""
    return BARE_AMP_RE.sub("&amp;", html)


def html_to_text(html: str | None) -> str:
    """Plain text: entities decoded, <br> a line break, a paragraph a blank line."""
    text = "".join(_parse(html or "").parts)
    lines = [re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def links_in_html(html: str | None) -> list[str]:
    """http(s) hrefs that are not mentions or hashtags (marked by class or rel=tag)."""
    out: list[str] = []
    for href, kind in _parse(html or "").hrefs:
        words = set(kind.lower().split())
        if words & {"mention", "hashtag", "tag", "u-url"} or not href.lower().startswith("http"):
            continue
        if href not in out:
            out.append(href)
    return out


def links_in_text(text: str | None) -> list[str]:
    """http(s) URLs written out in plain text, each once, without the punctuation around them:
    trailing .,;:!? and quotes, and a closing bracket that no bracket in the URL opened."""
    out: dict[str, None] = {}
    for match in LINK_RE.finditer(text or ""):
        url = _trim(match.group())
        if len(url) > url.index("//") + 2:
            out[url] = None
    return list(out)


def _trim(url: str) -> str:
    """`url` without its trailing punctuation; in linear time (brackets counted once)."""
    opened = {o: url.count(o) for o in CLOSING.values()}
    closed = {c: url.count(c) for c in CLOSING}
    end = len(url)
    while end:
        last = url[end - 1]
        if last in CLOSING and closed[last] > opened[CLOSING[last]]:
            closed[last] -= 1
        elif last not in TRAILING:
            break
        end -= 1
    return url[:end]


def sanitize_html(html: str | None) -> str | None:
    """Allowlisted HTML: no scripts, styles, handlers or non-http links; links get rel=noopener."""
    if not html:
        return None
    return nh3.clean(
        _bare_amps(html),
        tags=SAFE_TAGS,
        clean_content_tags={"script", "style"},
        attributes=SAFE_ATTRIBUTES,
        allowed_classes=SAFE_CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
