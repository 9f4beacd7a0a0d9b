"""Key points: the few sentences that say what a part of the event was about, each citing its posts.

Extractive and pure: every key point is a sentence someone posted (a speaker's quoted line when
there is one), chosen by centroid scoring and maximal marginal relevance, and standing for the posts
that say something like it. docs/report.md, "Key points".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reports.editorial import Context, Postlike, build_context, classify
from reports.sentences import sentences
from reports.speech import LEADING_TAGS, URL, is_speaker_quote, is_technical
from reports.text import STOPWORDS, tokens

__all__ = ["KeyPoint", "key_points"]

READ = 5_000  # characters of a post its sentences are drawn from: a 25,000-character post costs no more
LONGEST = 240  # characters: a longer sentence is not a point but a paragraph
FEWEST_WORDS = 4
SIMILAR = 0.5  # share of the shorter point's terms at which two points say the same thing
LAMBDA = 0.7  # MMR: weight of centrality against novelty
CANDIDATES = 300  # best-scored sentences MMR chooses among
QUOTE_WEIGHT, SPEAKER_WEIGHT = 1.5, 2.0  # a quoted line; a quoted line of a listed speaker
# Never a key point: what is not shown, and questions and pledges (they have lists of their own).
LEFT_OUT = frozenset({"question", "pledge", "copy", "spam", "low_content", "technical"})


@dataclass(frozen=True)
class KeyPoint:
    """One thing that was said: `post_ids[0]` is the post the sentence is from, then the posts it
    stands for, most alike first; `speaker` is who said it, for a quoted line."""

    sentence: str
    post_ids: tuple[str, ...]
    speaker: str | None = None


@dataclass(frozen=True)
class _Unit:
    sentence: str
    post: Postlike
    terms: frozenset[str]
    speaker: str | None
    score: float = 0.0


def _terms(text: str) -> frozenset[str]:
    """Content words, folded a little ('carers' and 'carer' alike); no hashtags or stopwords."""
    out = set()
    for word in tokens(text):
        if word[0] == "#" or word in STOPWORDS or len(word) < 3:
            continue
        out.add(
            word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word
        )
    return frozenset(out)


def _display(sentence: str) -> str:
    """A sentence as a key point shows it: no links, leading tags, or trailing hashtags, emoji
    or aside in brackets."""
    words = LEADING_TAGS.sub("", URL.sub(" ", sentence)).split()
    for _ in range(2):  # "… (on my break) 👍 #CoPro16"
        while words and (words[-1][0] in "#@" or not any(c.isalnum() for c in words[-1])):
            words.pop()
        if words and words[-1].endswith(")"):
            opened = next((i for i in range(len(words) - 1, -1, -1) if "(" in words[i]), None)
            if opened is not None and words[opened].startswith("("):
                del words[opened:]
    return " ".join(words)


def _units(post: Postlike) -> list[_Unit]:
    """The sentences of a post that could be a key point: its quoted line, else its statements."""
    quote = is_speaker_quote(post.text[:READ])
    if quote:
        line, speaker = " ".join(quote[0].split()), quote[1]
        return [_Unit(line, post, _terms(line), speaker)] if len(line) <= LONGEST else []
    out = []
    for sentence in sentences(post.text[:READ]):
        shown = _display(sentence)
        if (
            len(shown.split()) >= FEWEST_WORDS
            and len(shown) <= LONGEST
            and not shown.endswith(("?", ":"))  # a question, or words introducing a link
            and not is_technical(shown)
        ):
            out.append(_Unit(shown, post, _terms(shown), None))
    return out


def _key(name: str) -> str:
    return "".join(c for c in name.casefold() if c.isalnum())


def _score(unit: _Unit, weight: dict[str, float], speakers: frozenset[str]) -> _Unit:
    """Centroid score: how much of the part's shared vocabulary the sentence holds, length-fair."""
    if len(unit.terms) < 2:
        return unit
    # fsum: exact whatever the order a frozenset yields its terms in (a plain sum's last digits
    # follow the hash seed, and so would which of two close sentences wins)
    score = math.fsum(weight.get(t, 0.0) for t in unit.terms) / math.sqrt(len(unit.terms))
    if unit.speaker:
        score *= SPEAKER_WEIGHT if _key(unit.speaker) in speakers else QUOTE_WEIGHT
    return _Unit(unit.sentence, unit.post, unit.terms, unit.speaker, score)


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """How much of the shorter term set the other holds (1.0: one says all the other says)."""
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def _choose(units: Sequence[_Unit], k: int) -> list[_Unit]:
    """Maximal marginal relevance: central sentences that do not repeat one already chosen."""
    pool = sorted((u for u in units if u.score > 0), key=lambda u: -u.score)[:CANDIDATES]
    if not pool:
        return []
    top = pool[0].score
    chosen: list[_Unit] = []
    while len(chosen) < k:
        best, best_value = None, -math.inf
        used = {u.post.id for u in chosen}
        for unit in pool:
            if unit.post.id in used:
                continue
            overlap = max((_overlap(unit.terms, c.terms) for c in chosen), default=0.0)
            value = LAMBDA * unit.score / top - (1 - LAMBDA) * overlap
            if overlap < SIMILAR and value > best_value:
                best, best_value = unit, value
        if best is None:
            break
        chosen.append(best)
    return chosen


def key_points(
    posts: Iterable[Postlike],
    k: int = 3,
    speakers: Iterable[str] = (),
    context: Context | None = None,
) -> list[KeyPoint]:
    """Up to `k` key points of `posts` (oldest first), the one standing for most posts first.

    Only original posts in people's own words are read: never a copy, spam, low-content post or
    technical problem, nor a question or pledge (they have lists of their own). A post's quoted
    speaker line is its one candidate; otherwise each of its sentences of 4 words to 240
    characters. A sentence scores the terms it shares with the part's posts, each weighted by how
    many different people used it (a term only one account uses counts for nothing, so a prolific
    account cannot set the agenda), over the square root of its own term count; a speaker's quoted
    line counts 1.5 times, twice for one of `speakers` (names or handles). Maximal marginal
    relevance picks sentences that do not repeat one already picked (half of the shorter one's
    terms); every other post joins the point it shares most terms with (two or more): the cluster
    the point stands for. A point standing for no post but its own gives way to one that stands
    for others. `context` is `build_context(posts)` when not given.
    """
    if k < 1:
        raise ValueError(f"key_points needs k of at least 1, not {k}")
    posts = list(posts)
    context = context or build_context(posts)
    known = frozenset(_key(s) for s in speakers)
    readable = [p for p in posts if not classify(p, context) & LEFT_OUT]
    post_terms = {p.id: _terms(p.text[:READ]) for p in readable}
    authors: dict[str, set[str]] = defaultdict(set)
    for post in readable:
        for term in post_terms[post.id]:
            authors[term].add(post.author)
    people = len({p.author for p in readable}) or 1
    weight = {t: len(a) / people for t, a in authors.items() if len(a) > 1}
    units = [_score(u, weight, known) for p in readable for u in _units(p)]
    chosen = _choose(units, 2 * k)
    # Twice as many candidates as wanted: a point standing for no post but its own gives way to
    # one that stands for others, and the posts are shared out again among the points kept.
    cited = _cite(chosen, readable, post_terms)
    ranked = sorted(zip(chosen, cited, strict=True), key=lambda c: -len(c[1]))
    kept = [u for u, ids in ranked if len(ids) > 1][:k] or [u for u, _ in ranked][:k]
    cited = _cite(kept, readable, post_terms)
    points = [KeyPoint(u.sentence, ids, u.speaker) for u, ids in zip(kept, cited, strict=True)]
    return sorted(points, key=lambda p: -len(p.post_ids))


def _cite(
    chosen: list[_Unit], readable: list[Postlike], post_terms: dict[str, frozenset[str]]
) -> list[tuple[str, ...]]:
    """The ids each point cites: its own post, then the posts sharing the most terms with it (two
    or more; each post with one point only), most alike first."""
    members: list[list[tuple[int, str]]] = [[] for _ in chosen]
    sources = {u.post.id for u in chosen}
    for post in readable:
        if post.id in sources:
            continue
        shared = [len(post_terms[post.id] & u.terms) for u in chosen]
        best = max(range(len(chosen)), key=lambda i: shared[i], default=None)
        if best is not None and shared[best] >= 2:
            members[best].append((-shared[best], post.id))
    return [(u.post.id, *(i for _, i in sorted(m))) for u, m in zip(chosen, members, strict=True)]
