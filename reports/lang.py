"""Each shown post's language and writing direction, for `lang` and `dir` on the page and in story.json.

The source's own language tag wins when it is a real one; otherwise the language is detected offline by
py3langid (its model ships inside the package) from a bounded prefix of the text, without links,
@handles and #hashtags. A text with too few letters, or a guess the model is not sure of, keeps the
page's language: a wrong label is worse than none, since a screen reader switches voice on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

__all__ = ["PAGE_LANG", "Language", "post_language"]

PAGE_LANG = "en"  # the language the report's own words are written in (reports/templates)
MIN_LETTERS = 25  # fewer letters than this and a detector guesses: keep the page's language
MIN_CONFIDENCE = 0.8  # the detector's probability a language needs to be used
PREFIX = 1000  # characters of a post the detector reads
# Languages written right to left (ISO 639-1 and -3 codes as sources and py3langid give them).
RTL = frozenset(
    {"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ji", "ps", "sd", "syr", "ug", "ur", "yi"}
)
# A BCP 47 tag: a 2-3 letter language, then subtags (script, region, variant).
TAG = re.compile(r"([A-Za-z]{2,3})((?:[-_][A-Za-z0-9]{1,8})*)")
# Tags that say "no language" or "not known": X's q* codes (qme media, qht hashtags...), und, zxx, mul.
NOT_A_LANGUAGE = re.compile(r"q[a-t][a-z]|und|zxx|mul|mis", re.IGNORECASE)
NOISE = re.compile(r"https?://\S+|www\.\S+|[@#][\w.@-]+", re.UNICODE)


@dataclass(frozen=True)
class Language:
    lang: str  # a BCP 47 tag: "en", "cy", "ur", "pt-BR"
    dir: str  # "rtl", "ltr", or "auto" when the language is the page's by default rather than known


def post_language(text: str, given: str | None) -> Language:
    """The language of a post from its source's tag, else detected from its text."""
    tag = _tag(given)
    if tag is None:
        tag = _detect(text)
    if tag is None:
        return Language(PAGE_LANG, "auto")
    return Language(tag, "rtl" if _is_rtl(tag) else "ltr")


def _tag(value: str | None) -> str | None:
    """A source's language tag in BCP 47 form ("en_gb" -> "en-GB"), or None for none or junk."""
    match = TAG.fullmatch((value or "").strip())
    if not match or NOT_A_LANGUAGE.fullmatch(match[1]):
        return None
    subtags = [s for s in re.split(r"[-_]", match[2]) if s]
    shaped = [s.upper() if len(s) == 2 else s.title() if len(s) == 4 else s for s in subtags]
    return "-".join([match[1].lower(), *shaped])


def _is_rtl(tag: str) -> bool:
    lowered = tag.lower()
    return lowered.split("-")[0] in RTL or lowered.endswith("-arab") or "-arab-" in lowered


def _detect(text: str) -> str | None:
    """The language py3langid is sure of, from the start of the text; None when it is not sure
    or the text has too few letters to tell."""
    sample = NOISE.sub(" ", text[: PREFIX * 2])[:PREFIX]
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return None
    lang, probability = _identifier().classify(sample)
    return str(lang) if probability >= MIN_CONFIDENCE else None


@cache
def _identifier() -> LanguageIdentifier:
    """The model, loaded once (under a second) and only when a post needs it."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
