"""Sentences and cards: a linear sentence splitter that knows abbreviations and links, and a long
post cut at a sentence boundary for its card (docs/report.md, "Cards")."""

from __future__ import annotations

import re
import unicodedata

from reports.speech import URL

__all__ = ["card_text", "sentence_spans", "sentences"]

SENTENCE_END = re.compile(r"(?<![.!?…])[.!?…]++[\"'”’)\]]*+(?=\s)|\n")
_ABBREVIATIONS = (
    "dr mr mrs ms prof st vs etc e.g i.e eg ie no approx dept govt inc ltd jr sr cllr rev fig"
)
ABBREVIATIONS = frozenset(_ABBREVIATIONS.split())


def _is_end(text: str, match: re.Match[str]) -> bool:
    """A boundary: a newline, or ./!/? after a word that is no abbreviation or initial, before a
    capital letter (or an opening quote or bracket and one)."""
    if match.group() == "\n":
        return True
    rest = text[match.end() : match.end() + 8].lstrip()
    nxt = rest.lstrip("\"'“‘([")[:1]
    if not nxt or not (nxt.isupper() or nxt.isdigit() or nxt in "#@"):
        return False
    if match.group()[0] != ".":
        return True
    last = text[max(0, match.start() - 12) : match.start()].rsplit(None, 1)[-1:]
    word = last[0].casefold().lstrip("(\"'“‘") if last else ""
    return not (word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence: a linear splitter on . ! ? … and newlines before a capital,
    which knows "Dr.", "e.g.", initials and links (a link's dots end nothing)."""
    masked = URL.sub(lambda m: "x" * len(m.group()), text)
    spans, start = [], 0
    for match in SENTENCE_END.finditer(masked):
        if _is_end(masked, match):
            spans.append((start, match.end()))
            start = match.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((a, b))
    return out


def sentences(text: str) -> list[str]:
    """The sentences of a text (see `sentence_spans`)."""
    return [text[a:b] for a, b in sentence_spans(text)]


def card_text(text: str, limit: int = 280) -> tuple[str, bool]:
    """A post for its card: whole when it fits in `limit` characters; else cut after the last
    sentence that ends in the first `limit` characters (if that keeps at least 40% of them), else
    at the last space, and marked with "…"; never longer than `limit` + 1. The flag says whether it
    was cut, for the card to link to the whole post."""
    text = text.strip()
    if len(text) <= limit:
        return text, False
    ends = [b for _, b in sentence_spans(text[: limit - 1])][:-1]
    if ends and ends[-1] >= 0.4 * limit:
        return text[: ends[-1]] + " …", True
    space = text.rfind(" ", 0, limit + 1)
    cut = space if space >= 0.4 * limit else limit
    while 0 < cut < len(text) and _joined(text[cut - 1], text[cut]):
        cut -= 1  # never between a letter and its accent, or inside an emoji sequence
    return text[:cut].rstrip(" ,;:-–—") + "…", True


def _joined(before: str, after: str) -> bool:
    """Whether a cut between the two characters would split what reads as one character."""
    return (
        unicodedata.combining(after) > 0
        or after in "\u200d\ufe0f"
        or before == "\u200d"
        or "\udc00" <= after <= "\udfff"
    )
