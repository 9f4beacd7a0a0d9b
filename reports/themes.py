"""Themes: the terms most distinctive of one part of the story against the whole event (log-odds)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Theme", "distinctive_terms"]


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
