"""Editorial selection: which posts a story may show, and as what (docs/report.md, "Editorial rules").

The rules that need the posts around one live here: copies (`originals`, `is_copy`), spam
(`spam_accounts`, `is_spam`), and low content; `classify` applies every rule as the story does and
`highlight_eligible` says whether a post may be a highlight. The rules over one post's words are
reports/speech.py and cards reports/sentences.py, both re-exported here: integrators import this
module. Key points are reports/keypoints.py; scoring against a labelled file,
reports/editorial_eval.py. Pure, and linear in the length of each post.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from reports.sentences import card_text, sentence_spans, sentences
from reports.speech import (
    HASHTAG,
    LETTER,
    URL,
    WORD,
    is_pledge,
    is_question,
    is_speaker_quote,
    is_technical,
    strip_quoted,
    words,
)
from reports.text import clean_text

__all__ = [
    "CLASSES",
    "Context",
    "Item",
    "Postlike",
    "build_context",
    "card_text",
    "classify",
    "copy_key",
    "highlight_eligible",
    "is_copy",
    "is_low_content",
    "is_pledge",
    "is_question",
    "is_repost",
    "is_spam",
    "is_speaker_quote",
    "is_technical",
    "originals",
    "sentence_spans",
    "sentences",
    "spam_accounts",
    "strip_quoted",
]

CLASSES = ("question", "pledge", "technical", "spam", "copy", "low_content", "quote")


class Postlike(Protocol):
    """What the rules read of a post: connectors.base.Post fits; a PostView through `Item`."""

    @property
    def id(self) -> str: ...
    @property
    def author(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Item:
    """A post as the rules read it: `Item(view.post_id, view.author, view.text)`."""

    id: str
    author: str
    text: str


REPOST = re.compile(r"\s*+(?:rt|mt)\b\s*+:?\s*+@", re.IGNORECASE)
REPOST_HEAD = re.compile(r"\s*+(?:rt|mt)\b\s*+:?\s*+@[\w.\-@]++:?", re.IGNORECASE)
UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


# ---- copies --------------------------------------------------------------------------------------
def is_repost(text: str) -> bool:
    """A repost written out: the text starts "RT @name" or "MT @name" (any case)."""
    return bool(REPOST.match(text))


def _unreposted(text: str) -> str:
    """The text without its "RT @name:" heads."""
    end = 0
    while match := REPOST_HEAD.match(text, end):
        end = match.end()
    return text[end:]


def copy_key(text: str) -> str:
    """The words of a post in order, lower case, without reposting prefixes, links or hashtags:
    two posts with the same key say the same thing. Empty for a post without words."""
    text = _unreposted(clean_text(text))
    return " ".join(w.casefold() for w in WORD.findall(HASHTAG.sub(" ", URL.sub(" ", text))))


PREFIX = 30  # characters of key a truncated repost ("RT @x: the first words…") is looked up by


def originals(posts: Iterable[Postlike]) -> tuple[list[Postlike], dict[str, list[str]]]:
    """Originals and their copies, `posts` oldest first.

    A post is a copy when it is a repost ("RT @name: …") or says the same words as an earlier post
    (`copy_key`: case, links, hashtags, emoji and punctuation aside). Copies count as reach of the
    original they repeat, never as posts of their own: `copies_of` maps an original's id to its
    copies' ids. A repost of a post not among `posts`, or cut short with "…", is matched by the
    start of its words; when nothing matches it is still a copy, of nothing shown.
    """
    kept: list[Postlike] = []
    copies_of: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    by_prefix: dict[str, list[str]] = {}
    for post in posts:
        key = copy_key(post.text)
        original = first.get(key) if key else None
        if original is None and is_repost(post.text):
            original = _truncated(post.text, key, first, by_prefix)
        if original is not None:
            copies_of.setdefault(original, []).append(post.id)
        elif is_repost(post.text):
            continue
        else:
            kept.append(post)
            if key:
                first[key] = post.id
                by_prefix.setdefault(key[:PREFIX], []).append(key)
    return kept, copies_of


def _truncated(
    text: str, key: str, first: dict[str, str], by_prefix: dict[str, list[str]]
) -> str | None:
    """The original of a repost cut short ("…"), by the words before the cut."""
    if not text.rstrip().endswith(("…", "...")) or len(key) < PREFIX:
        return None
    whole = key.rsplit(" ", 1)[0]  # the last word may be cut
    for candidate in by_prefix.get(key[:PREFIX], ()):
        if candidate.startswith(whole):
            return first[candidate]
    return None


def is_copy(post: Postlike, context: Context) -> bool:
    """A repost or a text copy of an earlier post (`originals`)."""
    return post.id in context.copies


# ---- low content ---------------------------------------------------------------------------------
def is_low_content(text: str) -> bool:
    """Nothing to read beyond a reaction: once links, @accounts, #hashtags, emoji, numbers and
    punctuation are set aside, at most two words remain ("+1", "this!", "So true", "🔥🔥🔥",
    "#CoPro16 #NHS"); in scripts written without spaces (Chinese, Japanese, Thai), fewer than
    six letters."""
    text = _unreposted(clean_text(text))
    said = [w for w in words(text) if LETTER.search(w)]
    if not said:
        return True
    if UNSPACED.search(text):
        return sum(len(LETTER.findall(w)) for w in said) < 6
    return len(said) <= 2


# ---- spam ----------------------------------------------------------------------------------------
PITCH = re.compile(
    r"\b(?:followers|likes|go viral|boost your|grow your|make money|earn [£$€]|\d+% off|deals"
    r"|discount|promo code|free trial|free installation|click here|win an?|dm us|this (?:week|month) only"
    r"|limited offer|no experience needed|work from home|crypto|bitcoin|casino|payday|cheap)\b",
    re.IGNORECASE,
)
REPEATS = 3  # the same text or link from one account this many times is spam


def _links(text: str) -> set[str]:
    return {m.group().rstrip(".,;:!?)]'\"”’").rstrip("/").casefold() for m in URL.finditer(text)}


def _spammy(text: str) -> bool:
    """Spam on its own: hashtag stuffing, three or more links, or a sales pitch with a link."""
    text = clean_text(text)
    links = _links(text)
    tags = {t.casefold() for t in HASHTAG.findall(text)}
    said = [w for w in words(text) if LETTER.search(w)]
    stuffed = len(tags) >= 8 or (len(tags) >= 5 and len(tags) >= len(said))
    return stuffed or len(links) >= 3 or bool(links and PITCH.search(text))


@dataclass(frozen=True)
class Context:
    """What the rules need to know about the posts around one: copies, repeats and spam accounts."""

    copies: frozenset[str]  # ids of reposts and text copies
    copies_of: dict[str, list[str]]  # an original's id -> its copies' ids (its reach)
    spam_posts: frozenset[str]  # ids of posts that are spam by themselves or by repetition
    spam_accounts: frozenset[str]

    def reach(self, post_id: str) -> int:
        """How many copies repeat the post."""
        return len(self.copies_of.get(post_id, ()))


def build_context(posts: Iterable[Postlike]) -> Context:
    """Copies, spam posts and spam accounts among `posts` (oldest first)."""
    posts = list(posts)
    kept, copies_of = originals(posts)
    kept_ids = {p.id for p in kept}
    keys = {p.id: copy_key(p.text) for p in posts}
    links = {p.id: _links(clean_text(p.text)) for p in posts}
    said = Counter((p.author, keys[p.id]) for p in posts if keys[p.id])
    shared = Counter((p.author, link) for p in posts for link in links[p.id])
    spam = {
        p.id
        for p in posts
        if _spammy(p.text)
        or said[p.author, keys[p.id]] >= REPEATS
        or any(shared[p.author, link] >= REPEATS for link in links[p.id])
    }
    return Context(
        copies=frozenset(p.id for p in posts if p.id not in kept_ids),
        copies_of=copies_of,
        spam_posts=frozenset(spam),
        spam_accounts=frozenset(_spam_accounts(posts, spam)),
    )


def _spam_accounts(posts: Sequence[Postlike], spam: set[str]) -> set[str]:
    """Accounts with at least three spam posts that make up at least half of what they posted."""
    total, spammed = (
        Counter(p.author for p in posts),
        Counter(p.author for p in posts if p.id in spam),
    )
    return {a for a, n in spammed.items() if n >= REPEATS and 2 * n >= total[a]}


def spam_accounts(posts: Iterable[Postlike]) -> set[str]:
    """Accounts that post spam and little else (see `is_spam`); their posts and links are left out."""
    return set(build_context(posts).spam_accounts)


def is_spam(post: Postlike, context: Context) -> bool:
    """Spam: a post stuffed with hashtags (eight or more, or five or more outnumbering its words),
    with three or more links, or selling something with a link ("50% off", "followers", "click
    here"); a post whose text or link its account posted three times or more; and every post of an
    account whose posts are mostly spam (`spam_accounts`)."""
    return (
        post.author in context.spam_accounts or post.id in context.spam_posts or _spammy(post.text)
    )


# ---- all together --------------------------------------------------------------------------------
def classify(post: Postlike, context: Context) -> frozenset[str]:
    """The post's classes (`CLASSES`) as the story uses them. A copy keeps its text's classes (it is
    counted, never shown); spam is only spam (and low content or a copy); a low-content post asks
    and pledges nothing; a technical problem is never a question or a pledge."""
    found = set()
    if is_copy(post, context):
        found.add("copy")
    low = is_low_content(post.text)
    if low:
        found.add("low_content")
    if is_spam(post, context):
        return frozenset({*found, "spam"})
    if is_technical(post.text):
        found.add("technical")
    if is_speaker_quote(post.text):
        found.add("quote")
    if not low and "technical" not in found:
        if is_pledge(post.text):
            found.add("pledge")
        elif is_question(post.text):
            found.add("question")
    return frozenset(found)


def highlight_eligible(post: Postlike, context: Context) -> bool:
    """Whether a post may be shown as a highlight: never a copy, spam, low content or a technical
    problem."""
    return not (
        is_copy(post, context)
        or is_spam(post, context)
        or is_low_content(post.text)
        or is_technical(post.text)
    )
