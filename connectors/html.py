"""Post HTML -> plain text (for search and export) and -> sanitised HTML.

The project's only nh3 allowlists are here, one per purpose, and differ because what they guard
differs:
- `STORED_HTML`, what a connector keeps of a platform's HTML in `Post.html` (`sanitize_html`): the
  post as its author wrote it (paragraphs, headings, lists, quotes, images with their alt text,
  Mastodon's mention, hashtag and card classes, mailto links) for the exports and any later
  display, and nothing that runs, so no database or export holds live markup.
- `SHOWN_HTML`, what the story page shows (reports.text.sanitise_html), on our own public page among
  our own headings and cards: inline formatting, paragraphs, quotes, lists and http(s) links only.
  No images (a remote address would tell another server who reads the story; the story shows a
  post's media itself, as an archived thumbnail with its alt text or a link), no headings (they
  would break the page's outline for screen readers), no titles or mailto; links are marked `ugc`
  too, as user content. It is applied to whatever the database holds, which did not all come
  through `STORED_HTML` (an imported archive's html is kept as the file gives it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import unescape
from html.entities import html5

import nh3

__all__ = [
    "HASHTAG_RE",
    "LINK_RE",
    "MAX_HTML",
    "SHOWN_HTML",
    "STORED_HTML",
    "HtmlPolicy",
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
# Skipped to their end tag whatever they hold, as a browser reads them ("<" in a script is no tag).
RAW_TEXT = {
    name: re.compile(rf"</{name}(?![^\s/>])", re.I) for name in ("script", "style", "title")
}
# One token of markup, read whole: a comment (to "-->" or the end), a tag (quoted values may hold
# ">"; to its ">" or the end), a bogus comment ("<!DOCTYPE …>", "<?xml …>", "</ …>"), or text: a
# run without "<", or a "<" that starts nothing. Once an alternative's first characters match, it
# matches whatever follows, so nothing is scanned twice: linear, also in "<<<<" or "<a <a <a". The
# attributes' repeat is possessive (*+): it keeps no way back through each "=", which costs memory
# and, past some 100 kB of "= = =", time out of proportion to the length.
TOKEN = re.compile(
    r"<!--(?:-?>|.*?(?:--!?>|\Z))"
    r"|<(?P<end>/?)(?P<name>[A-Za-z][^\s/>]*)"
    r"""(?P<attrs>(?:[^>=]+|=\s*(?:"[^"]*"?|'[^']*'?)?)*+)>?"""
    r"|<[!?/][^>]*>?"
    r"|(?P<text><|[^<]+)",
    re.S,
)
ATTR_RE = re.compile(r"""([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\s>]+)))?""")
ATTR_AMP_RE = re.compile(r"&([A-Za-z][A-Za-z0-9]*)(?=(.?))", re.S)  # a named reference and after
# Characters of a post's HTML kept (sanitised) for the report, which shows at most
# reports.text.MAX_SHOWN of them: nh3 takes time quadratic in a long text node or attribute of "&",
# "©" or no-break spaces, so a megabyte of them would take minutes. The text keeps every character.
MAX_HTML = 20_000


@dataclass(frozen=True)
class HtmlPolicy:
    """What one purpose lets through of a post's HTML, an nh3 allowlist: these tags, these
    attributes and classes on them, links and images with these URL schemes, and `link_rel` on
    every link. Anything else goes: script and style with their content, other tags leaving
    their text, every event handler and style attribute, any other URL."""

    tags: frozenset[str]
    attributes: Mapping[str, frozenset[str]]
    classes: Mapping[str, frozenset[str]]
    url_schemes: frozenset[str]
    link_rel: str

    def clean(self, html: str) -> str:
        """`html` as this policy allows it. nh3 takes time quadratic in a long text node or
        attribute of "&", "©" or no-break spaces: callers pass a bounded prefix."""
        return nh3.clean(
            html,
            tags=set(self.tags),
            clean_content_tags={"script", "style"},
            attributes={tag: set(names) for tag, names in self.attributes.items()},
            allowed_classes={tag: set(names) for tag, names in self.classes.items()},
            url_schemes=set(self.url_schemes),
            link_rel=self.link_rel,
        )


# Side by side: why they differ is in the module's docstring.
STORED_HTML = HtmlPolicy(
    tags=frozenset(
        {*BLOCK_TAGS, "br", "a", "span", "em", "strong", "b", "i", "u", "s", "del", "code", "img"}
    ),
    attributes={"a": frozenset({"href", "title"}), "img": frozenset({"src", "alt", "title"})},
    classes={
        "a": frozenset({"mention", "hashtag", "u-url"}),
        "span": frozenset({"invisible", "ellipsis", "h-card"}),
    },
    url_schemes=frozenset({"http", "https", "mailto"}),
    link_rel="noopener noreferrer nofollow",
)
SHOWN_HTML = HtmlPolicy(
    tags=frozenset(
        {"a", "p", "br", "span", "strong", "em", "b", "i", "code", "blockquote", "ul", "ol", "li"}
    ),
    attributes={"a": frozenset({"href"})},
    classes={"span": frozenset({"invisible", "ellipsis"})},  # Mastodon's shortened links
    url_schemes=frozenset({"http", "https"}),
    link_rel="noopener noreferrer nofollow ugc",
)


class _Parsed:
    """The text of `html` (<br> a line break, a block start or end a blank line, script, style and
    the like skipped) and its links' (href, class + rel), for html_to_text and links_in_html.

    Linear in the length of `html`, however hostile: each token (a comment, a tag, a text run) is
    read once, to its end, by a regex that never fails after scanning, so never scans again;
    html.parser is quadratic on "<a <a <a …" and nh3 on a long run of "&", "©" or no-break spaces."""

    def __init__(self, html: str) -> None:
        self.parts: list[str] = []
        self.hrefs: list[tuple[str, str]] = []
        self.skipping = 0
        pos = 0
        while pos < len(html):
            token = TOKEN.match(html, pos)
            assert token  # its last alternatives match any character
            pos = self._read(token, html)

    def _read(self, token: re.Match[str], html: str) -> int:
        """Takes in one token; returns where the next one starts."""
        closing, name = token.group("end") == "/", (token.group("name") or "").lower()
        if not name:
            if token.group("text") and not self.skipping:
                self.parts.append(unescape(token.group("text")))
        elif name in RAW_TEXT:  # skipped to its end tag, "<" and all; that end tag skips nothing
            if not closing:
                end = RAW_TEXT[name].search(html, token.end())
                return end.start() if end else len(html)
        elif name in SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1) if closing else self.skipping + 1
        elif self.skipping:
            pass
        elif name == "br":  # "</br>" too, as browsers read it
            self.parts.append("\n")
        elif name in BLOCK_TAGS:
            self.parts.append("\n\n")
        elif name == "a" and not closing:
            found = _attributes(token.group("attrs"))
            kind = f"{found.get('class', '')} {found.get('rel', '')}"
            self.hrefs.append((found.get("href", "").strip(), kind))
        return token.end()


def _attributes(markup: str) -> dict[str, str]:
    """A tag's attributes, names lowercase, values decoded; the first of a repeated name wins."""
    found: dict[str, str] = {}
    for attr in ATTR_RE.finditer(markup):
        value = next((v for v in attr.group(2, 3, 4) if v is not None), "")
        found.setdefault(attr.group(1).lower(), unescape(ATTR_AMP_RE.sub(_attribute_amp, value)))
    return found


def _attribute_amp(ref: re.Match[str]) -> str:
    """A named reference as an attribute reads it: "&region=eu" in a link stays as written (text
    would read "®ion=eu"), so a legacy name without ";" counts only when no letter, digit or "="
    follows it."""
    name, after = ref.group(1), ref.group(2)
    if after == ";" or (name in html5 and after != "="):
        return ref.group()
    return "&amp;" + name


def html_to_text(html: str | None) -> str:
    """Plain text: entities decoded, <br> a line break, a paragraph a blank line."""
    text = "".join(_Parsed(html or "").parts)
    lines = [re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def links_in_html(html: str | None) -> list[str]:
    """http(s) hrefs that are not mentions or hashtags (marked by class or rel=tag)."""
    out: list[str] = []
    for href, kind in _Parsed(html or "").hrefs:
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


def _bare_amps(html: str) -> str:
    """ "&" that starts no character reference written "&amp;": nh3 is slow on long runs of them."""
    return BARE_AMP_RE.sub("&amp;", html)


def sanitize_html(html: str | None) -> str | None:
    """A platform's HTML as `STORED_HTML` keeps it. Past MAX_HTML characters, cut (an unfinished
    tag dropped) and ended with "…"."""
    if not html:
        return None
    clean = STORED_HTML.clean(_bare_amps(html[:MAX_HTML]))
    return clean + "…" if len(html) > MAX_HTML else clean
