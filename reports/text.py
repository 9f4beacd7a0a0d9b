"""What a post says: cleaned text, sanitised HTML, terms, sentiment, questions, pledges, near-duplicates.

Pure functions, no NLTK corpora: a regex tokenizer, our own stopword list, TextBlob's lexicon sentiment.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import TypeVar

import nh3
from textblob.en import sentiment as pattern_sentiment  # what TextBlob's PatternAnalyzer calls

__all__ = [
    "ANALYSER",
    "STOPWORDS",
    "Analysis",
    "Facts",
    "Theme",
    "analyse_text",
    "clean_text",
    "distinct",
    "distinctive_terms",
    "is_action",
    "is_question",
    "join_and",
    "narrative",
    "question_sentence",
    "sanitise_html",
    "sentiment",
    "shingles",
    "surface_forms",
    "terms",
    "tokens",
]

ANALYSER = "text-1"  # bump when terms/flags change: `analyse` then redoes every post
T = TypeVar("T")

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
QUESTION = re.compile(r"\w[\w\s\"')’”]*\?|^\s*Q(?:\s*[:.]|\s+for\b)", re.IGNORECASE)
ACTION = re.compile(
    r"\b(?:i|we)(?:\s+will|['’]ll)\b(?!\s+see\b)"
    r"|\b(?:i['’]m|i\s+am|we['’]re|we\s+are)\s+(?:going\s+to|gonna)\b"
    r"|\b(?:i|we)\s+(?:pledge|promise|commit|vow)\b"
    r"|\blet['’]s\s+(?!see\b)\w"
    r"|\bmy\s+(?:next\s+)?(?:action|pledge|commitment)s?\b"
    r"|\bnext\s+steps?\b"
    r"|\b(?:i|we)\s+(?:need|must|have)\s+to\b",
    re.IGNORECASE,
)
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
_HTML_TAGS = "a p br span strong em b i code blockquote ul ol li"
HTML_TAGS = frozenset(_HTML_TAGS.split())  # formatting and links only


def clean_text(value: object) -> str:
    """Text without controls, bidi overrides or zero-width characters (hidden or reordered text)."""
    text = "" if value is None else str(value)
    return CONTROL.sub("", STRAY_ZWJ.sub("", text))


def sanitise_html(html: str | None) -> str:
    """Post HTML through nh3's allowlist: basic formatting and http(s) links, nothing that runs."""
    if not html:
        return ""
    return nh3.clean(
        clean_text(html),
        tags=HTML_TAGS,
        attributes={"a": {"href"}},
        allowed_classes={"span": {"invisible", "ellipsis"}},  # Mastodon's shortened links
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow ugc",
    )


def _plain(text: str) -> str:
    return MENTION.sub(" ", URL.sub(" ", clean_text(text)))


def _words(text: str, fold_initial: bool = False) -> list[str]:
    """Words as written; with `fold_initial`, one capitalised only by starting a sentence is lowered."""
    plain = _plain(text).replace("’", "'")
    out = []
    for match in TOKEN.finditer(plain):
        word = match.group().removesuffix("'s").removesuffix("'S").strip("-'")
        if any(c.isalpha() for c in word):
            if fold_initial and plain[: match.start()].rstrip()[-1:] in (
                "",
                ".",
                "!",
                "?",
                ":",
                "-",
            ):
                word = word.lower()
            out.append(word)
    return out


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


@lru_cache(
    maxsize=8192
)  # hashtag streams repeat themselves (reposts, slogans): score each text once
def sentiment(text: str) -> tuple[float, float]:
    """(polarity -1..1, subjectivity 0..1) from TextBlob's pattern lexicon; works offline, no corpora."""
    polarity, subjectivity = pattern_sentiment(_plain(text).replace("#", " "))
    return round(polarity, 3), round(subjectivity, 3)


def is_question(text: str) -> bool:
    return bool(QUESTION.search(_plain(text)))


def is_action(text: str) -> bool:
    """A pledge or next step: 'we will…', 'I'm going to…', 'let's…', 'my action…'."""
    return bool(ACTION.search(_plain(text)))


@dataclass(frozen=True)
class Analysis:
    polarity: float
    subjectivity: float
    terms: list[str]
    question: bool
    action: bool


def analyse_text(text: str) -> Analysis:
    """Everything the report needs from one post's text, computed once and stored."""
    polarity, subjectivity = sentiment(text)
    return Analysis(polarity, subjectivity, terms(text), is_question(text), is_action(text))


def shingles(text: str) -> frozenset[str]:
    """Word pairs of the normalised text (hashtags dropped): near-duplicates share most of them."""
    words = [w for w in tokens(text) if not w.startswith("#")] or tokens(text)
    pairs = {f"{a} {b}" for a, b in pairwise(words)}
    return frozenset(pairs or words)


def distinct(
    items: Iterable[T], text: Callable[[T], str], limit: int, threshold: float = 0.6
) -> list[T]:
    """The first `limit` items whose text is not a near-duplicate (Jaccard >= threshold) of one kept."""
    kept: list[tuple[T, frozenset[str]]] = []
    for item in items:
        sig = shingles(text(item))
        if all(len(sig & s) < threshold * len(sig | s) for _, s in kept):
            kept.append((item, sig))
            if len(kept) >= limit:
                break
    return [item for item, _ in kept]


@dataclass(frozen=True)
class Theme:
    term: str
    count: int  # posts in the part using it
    score: float  # z-score of its log-odds against the rest of the event


def distinctive_terms(
    part: Counter[str],
    event: Counter[str],
    limit: int = 6,
    min_count: int = 2,
    skip: Sequence[str] = (),
    min_z: float = 1.0,  # one standard error: small sessions have themes too; the top few are shown
) -> list[Theme]:
    """Terms most distinctive of `part` against the rest of `event`: log-odds with an informative
    Dirichlet prior (Monroe, Colaresi & Quinn 2008), z > `min_z`; bigrams absorb their own words."""
    n_part, n_event = sum(part.values()), sum(event.values())
    n_rest = max(n_event - n_part, 0)
    a0 = max(min(n_event, 2000), 1) * 0.1  # prior strength: shrinks rare words towards the event
    scored = []
    for term, y_i in part.items():
        if y_i < min_count or term in skip:
            continue
        alpha = a0 * (event[term] + 0.5) / (n_event + 0.5 * len(event))
        y_j = max(event[term] - y_i, 0)
        delta = math.log((y_i + alpha) / (n_part + a0 - y_i - alpha)) - math.log(
            (y_j + alpha) / (n_rest + a0 - y_j - alpha)
        )
        z = delta / math.sqrt(1 / (y_i + alpha) + 1 / (y_j + alpha))
        if z > min_z:
            scored.append(Theme(term, y_i, round(z, 2)))
    scored.sort(key=lambda t: (-t.score, -t.count, t.term))
    return _absorb(scored, limit)


def _absorb(scored: list[Theme], limit: int) -> list[Theme]:
    """The best `limit` themes with no word twice; a phrase stands in for its own words."""
    pairs: dict[str, Theme] = {}
    for theme in scored:
        for word in theme.term.split() if " " in theme.term else ():
            pairs.setdefault(word, theme)
    chosen: list[Theme] = []
    for theme in scored:
        pair = pairs.get(theme.term)
        if pair and pair.count >= 0.6 * theme.count:
            theme = pair  # 'lone wolves' says more than 'wolves'
        words = set(theme.term.split())
        if any(words & set(c.term.split()) for c in chosen):
            continue
        chosen.append(theme)
        if len(chosen) == limit:
            break
    return chosen


@dataclass
class Facts:
    """What a part's paragraph is written from. `turn` (its place in the story) varies the wording
    from one part to the next, the same on every run."""

    kind: str  # session | before | after
    turn: int
    posts: int
    people: int
    busiest: bool = False  # the day's busiest session
    quiet: bool = False  # one of its quietest
    peak: str | None = None
    peak_unit: str = "minute"  # minute | hour | day
    peak_count: int = 0
    later: int = 0  # a session's posts after it ended, looking back
    themes: Sequence[str] = ()  # as shown: 'Becky Malby', 'housing'
    questions: int = 0
    question: str | None = None  # one of them, to quote
    actions: int = 0
    positive: float = 0.0  # shares of posts
    negative: float = 0.0
    top_author: str | None = None
    top_posts: int = 0


def _pick(f: Facts, *options: str, shift: int = 0) -> str:
    return options[(f.turn + shift) % len(options)]


def _n(n: int, one: str, many: str) -> str:
    return f"one {one}" if n == 1 else f"{n:,} {many}"


def join_and(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _peak(f: Facts, lead: str) -> str:
    if f.peak is None or f.peak_count < 2 or f.posts < 5:
        return ""
    if f.peak_unit == "day":
        return f", most of them on {f.peak}"
    if f.peak_unit == "hour":
        return f", busiest in the hour from {f.peak}"
    burst = f" ({f.peak_count:,} posts in a single minute)" if f.peak_count >= 3 else ""
    return f"{lead} {f.peak}{burst}"


def _volume(f: Facts) -> str:
    who = _n(f.people, "person", "people")
    if f.posts == 1:
        where = {
            "session": "during this session",
            "before": "before the event",
            "after": "after the event",
        }
        return f"Just one post came in {where[f.kind]}, from {f.top_author}."
    if f.people == 1:
        return f"All {f.posts:,} posts here came from {f.top_author}{_peak(f, ', busiest at')}."
    if f.kind == "before":
        return f"The build-up brought {f.posts:,} posts from {who}{_peak(f, ', busiest at')}."
    if f.kind == "after":
        return f"Afterwards, {who} looked back on the day in {f.posts:,} posts{_peak(f, ', busiest at')}."
    rank = (" — the busiest session of the day" if f.busiest
            else ", one of the quieter sessions" if f.quiet else "")  # fmt: skip
    return _pick(
        f,
        f"{f.posts:,} posts from {who}{rank}{_peak(f, '; the conversation peaked at')}.",
        f"This session drew {f.posts:,} posts from {who}{rank}{_peak(f, '; activity peaked at')}.",
        f"{f.people:,} people joined the conversation with {f.posts:,} posts{rank}{_peak(f, '; the peak came at')}.",
    )


def _topics(f: Facts) -> str:
    # participles ('registered', 'inspired') make poor topics in a sentence; the chips still show them
    topics = [t for t in f.themes if " " in t or not t.casefold().endswith("ed")][:3]
    if not topics:
        return ""
    lead = _pick(
        f, "People talked most about", "The talk centred on", "Much of the conversation was about"
    )
    return f"{lead} {join_and(topics)}."


def _tone(f: Facts) -> str:
    if f.posts < 3:
        return ""
    pos, neg = round(100 * f.positive), round(100 * f.negative)
    critical = "none critical" if neg == 0 else f"{neg}% critical"
    if f.positive >= 0.6 and f.negative <= 0.1:
        return _pick(f, f"The mood was overwhelmingly positive ({pos}% of posts).",
                     f"Reactions were warm: {pos}% of posts were positive.", shift=1)  # fmt: skip
    if f.negative >= 0.3:
        return f"It was not all praise: {neg}% of posts struck a critical note."
    if f.positive >= 0.5 and f.negative <= 0.15:
        return f"The tone was largely positive ({pos}% of posts, {critical})."
    if f.positive >= 0.25 and f.negative >= 0.15:
        return f"Reactions were mixed: {pos}% positive, {neg}% critical."
    if f.positive >= 0.3:
        return (
            f"Many posts were appreciative ({pos}%), {critical}; the rest reported what was said."
        )
    return _pick(f, "Most posts were matter-of-fact, more reporting than reacting.",
                 "The tone was mostly neutral: people reported more than they reacted.")  # fmt: skip


def _asked(f: Facts) -> str:
    questions, actions = (
        _n(f.questions, "question", "questions"),
        _n(f.actions, "pledge", "pledges"),
    )
    if f.actions and not f.questions:
        return f"People made {actions} to act."
    if not f.questions:
        return ""
    quote = f"“{f.question}”" if f.question else ""
    then = f" People also made {actions} to act." if f.actions else ""
    if f.questions == 1:
        return (f"One question came up{': ' + quote if quote else '.'}" + then).strip()
    if not quote:
        return f"People asked {questions}.{then}"
    said = _pick(f, f"People asked {questions}, among them {quote}",
                 f"{f.questions:,} questions came up, such as {quote}",
                 f"The audience put {questions}, including {quote}", shift=2)  # fmt: skip
    return said + then


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


def narrative(f: Facts) -> str:
    """A paragraph a comms team could publish: volume, peak, what people talked about, tone, questions."""
    if f.posts == 0:
        return {"session": "No posts were collected for this session.",
                "before": "Nothing was posted before the event began.",
                "after": "Nothing was posted after the event ended."}[f.kind]  # fmt: skip
    out = [_volume(f)]
    if f.later >= 2 and f.kind == "session":
        out.append(_pick(f, f"Another {f.later:,} looked back on it after it ended.",
                         f"It was still being talked about later: {f.later:,} more posts came afterwards.",
                         shift=2))  # fmt: skip
    out += [_topics(f), _tone(f)]
    out.append(_asked(f))
    if f.top_author and f.people >= 3 and f.top_posts >= 3 and f.top_posts >= 0.15 * f.posts:
        out.append(f"{f.top_author} was the most active voice, with {f.top_posts:,} posts.")
    return " ".join(s for s in out if s)
