"""What one post says: cleaned text, sanitised HTML, terms, sentiment, questions, pledges, near-duplicates.

Pure functions, no NLTK corpora: a regex tokenizer, our own stopword list, TextBlob's lexicon sentiment.
Themes across posts are reports/themes.py; the paragraphs written from them, reports/narrative.py.

Post text is hostile input: every function here runs in time linear in its length (no regex that
backtracks over what it already read; tests/test_linear_time.py). The analysis (terms, tokens,
sentiment, questions, pledges, near-duplicates) reads only the first `MAX_ANALYSED` characters of a
post; `clean_text` keeps the whole of it for display, `sanitise_html` the first `MAX_SHOWN`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import pairwise

from textblob.en import sentiment as pattern_sentiment  # what TextBlob's PatternAnalyzer calls

from connectors.html import SHOWN_HTML

__all__ = [
    "ANALYSER",
    "MAX_ANALYSED",
    "MAX_SHOWN",
    "STOPWORDS",
    "clean_text",
    "question_sentence",
    "sanitise_html",
    "sentiment",
    "shingles",
    "surface_forms",
    "terms",
    "tokens",
]

ANALYSER = "text-4"  # bump when terms/flags change (or reports/features.py): all is analysed again
MAX_ANALYSED = 10_000  # characters of a post the analysis reads: a megabyte post costs no more
# Characters of a post's HTML shown: nh3 takes time quadratic in a text node or attribute full of "&",
# "©" or no-break spaces, so a megabyte of them would take minutes. Far above any real post.
MAX_SHOWN = 20_000

# Invisible characters that reorder or hide text (bidi controls, zero-width, BOM) and C0/C1 controls.
CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200c\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]"
)
# A zero-width joiner is kept only inside an emoji sequence (👩‍⚕️), where it is harmless and meaningful.
STRAY_ZWJ = re.compile(
    r"(?<![\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F])\u200d|\u200d(?![\U0001F000-\U0001FAFF\u2600-\u27BF])"
)
URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION = re.compile(r"(?<![\w@])@[\w.\-]+(?:@[\w\-]+(?:\.[\w\-]+)+)?")
TOKEN = re.compile(r"#?\w+(?:[-'’]\w+)*")
SENTENCE_START = frozenset(".!?:-")  # a word after one of these (or first) is capitalised by rule
# TextBlob splits punctuation off a word one character at a time, copying the word each time: words are
# cut to this length first (its lexicon's longest word has 19 letters), so a run of "!!!…" stays linear.
LONGEST_WORD = 64
LONG_WORD = re.compile(rf"\S{{{LONGEST_WORD}}}(?=\S)")
# English function words and social-media filler, shipped here so nothing needs NLTK corpora.
_STOPWORDS = """a about above after again against all almost also am among an and any are aren't around as at be
    because been before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't done down during each either else ever every few for from further get gets getting
    go goes going gone got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
    herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it'd it'll it's its itself
    just let let's like lot lots made make many may me might more most much must mustn't my myself near
    need needs no nor not now of off oh ok okay on once one only or other others ought our ours ourselves
    out over own per quite rather really right rt said same say says see seen shall shan't she she'd she'll
    she's should shouldn't since so some still such sure than that that's the their theirs them themselves
    then there there's these they they'd they'll they're they've thing things this those though through
    thus till to today tomorrow tonight too under until up upon us very via want was wasn't way we we'd
    we'll we're we've well were weren't what what's when when's where where's whether which while who
    who's whom whose why why's will with within without won't would wouldn't yes yet you you'd you'll
    you're you've your yours yourself yourselves amp im ive dont cant didnt doesnt isnt thats wont
    absolutely agree agreed amazing awesome brilliant excellent fab fantastic good great love loved lovely
    nice powerful wonderful thanks thank listening watching thinking looking forward learn learning
    earlier later session sessions discussion point points event day everyone anyone someone something"""
STOPWORDS = frozenset(_STOPWORDS.split())


def clean_text(value: object) -> str:
    """Text without controls, bidi overrides or zero-width characters (hidden or reordered text)."""
    text = "" if value is None else str(value)
    return CONTROL.sub("", STRAY_ZWJ.sub("", text))


def sanitise_html(html: str | None) -> str:
    """Post HTML as the story shows it (connectors.html.SHOWN_HTML: basic formatting and http(s)
    links, nothing that runs), without hidden characters; past MAX_SHOWN characters, cut and
    ended with "…"."""
    if not html:
        return ""
    clean = SHOWN_HTML.clean(clean_text(html[:MAX_SHOWN]))
    return clean + "…" if len(html) > MAX_SHOWN else clean


def _plain(text: str) -> str:
    """What the analysis reads: the first MAX_ANALYSED characters, clean, without links or @handles."""
    return MENTION.sub(" ", URL.sub(" ", clean_text(text[:MAX_ANALYSED])))


def _words(text: str, fold_initial: bool = False) -> list[str]:
    """Words as written; with `fold_initial`, one capitalised only by starting a sentence is lowered."""
    plain = _plain(text).replace("’", "'")
    out = []
    end = 0  # where the previous token ended: only the gap since then is read again
    for match in TOKEN.finditer(plain):
        word = match.group().removesuffix("'s").removesuffix("'S").strip("-'")
        if any(c.isalpha() for c in word):
            if fold_initial and _starts_sentence(plain[end : match.start()], first=end == 0):
                word = word.lower()
            out.append(word)
        end = match.end()
    return out


def _starts_sentence(gap: str, first: bool) -> bool:
    """Whether a word after `gap` (the text since the previous word, if any) opens a sentence."""
    mark = gap.rstrip()[-1:]
    return mark in SENTENCE_START if mark else first


def tokens(text: str) -> list[str]:
    """Lower-case words and #hashtags, without links, @handles, numbers or possessive 's."""
    return [w.casefold() for w in _words(text)]


def _terms(words: Sequence[str]) -> dict[str, str]:
    """{term: as written}: content words and hashtags, and bigrams of adjacent content words."""
    content = [
        w if w.casefold() not in STOPWORDS and (len(w) > 2 or w[0] == "#") else "" for w in words
    ]
    found = {w.casefold(): w for w in content if w}
    for a, b in pairwise(content):
        if a and b and a[0] != "#" and b[0] != "#":
            found.setdefault(f"{a} {b}".casefold(), f"{a} {b}")
    return found


def terms(text: str) -> list[str]:
    """A post's theme candidates (lower case): content words, hashtags, bigrams of content words."""
    return list(_terms(_words(text)))


def surface_forms(texts: Iterable[str], names: Iterable[str] = ()) -> dict[str, str]:
    """{term: how it is written}: `names` as given ('Becky Malby'), then `texts`, where a word
    capitalised only because it starts a sentence counts as lower case."""
    forms: dict[str, str] = {}
    for name in names:
        for term, written in _terms(_words(name)).items():
            forms.setdefault(term, written)
    for text in texts:
        for term, written in _terms(_words(text, fold_initial=True)).items():
            forms.setdefault(term, written)
    return forms


# Hashtag streams repeat themselves (reposts, slogans): each text is scored once.
@lru_cache(maxsize=8192)
def sentiment(text: str) -> tuple[float, float]:
    """(polarity -1..1, subjectivity 0..1) from TextBlob's pattern lexicon; works offline, no corpora."""
    plain = LONG_WORD.sub(r"\g<0> ", _plain(text).replace("#", " "))
    polarity, subjectivity = pattern_sentiment(plain)
    return round(polarity, 3), round(subjectivity, 3)


def shingles(text: str) -> frozenset[str]:
    """Word pairs of the normalised text (hashtags dropped): near-duplicates share most of them."""
    words = [w for w in tokens(text) if not w.startswith("#")] or tokens(text)
    pairs = {f"{a} {b}" for a, b in pairwise(words)}
    return frozenset(pairs or words)


def question_sentence(text: str, limit: int = 100) -> str | None:
    """The question in a post, to quote: its sentence ending in '?', without hashtags or links."""
    plain = " ".join(w for w in _plain(text).split() if not w.startswith("#"))
    for sentence in re.split(r"(?<=[.!?])\s+", plain):
        sentence = (
            sentence.split(":", 1)[-1].strip() if sentence.lower().startswith("q ") else sentence
        )
        if sentence.endswith("?") and 3 <= len(sentence) <= limit:
            return sentence[0].upper() + sentence[1:]
    return None
