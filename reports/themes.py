"""Themes: the terms most distinctive of one part of the story against the whole event (log-odds),
with the programme's names kept whole and the chatter of any live event left out."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reports.text import terms, tokens

__all__ = ["CHATTER", "Theme", "distinctive_terms", "fold_names", "programme_names"]

# Words that say how people took part, not what about: never a theme, nor a phrase holding one.
_CHATTER = """nothing something anything everything everyone everybody anybody somebody people person
    watch watched watches watching worth included include includes join joined joining live
    stream streamed streaming online tweet tweets tweeting tweeted follow following chat hear
    heard hearing listen listened talk talking talked speaker speakers panel panels morning
    afternoon evening tonight room slide slides great thank thanks hello welcome please true wow
    lol link links webex zoom sound video audio back next last first new many much also still
    just time times going think know like question questions answer answers recording recorded
    hashtag hashtags tune tuned catch caught missed miss enjoy enjoyed enjoying share shared
    sharing read reading word words yes wait waiting start started end ended look looks looking
    looked take takes taking took taken tell tells telling told try tries trying tried turn turned
    turning stay stayed instead stuff year years week weeks month months reply replies summary
    give gave put keep kept come comes came coming went want wanted feel felt seem seems ask asks
    asked call called bring brought idea ideas kind sort bit whole maybe actually yesterday soon
    ago again never always often least lots bigger best better little big usually easy struck set
    simply clearly quite"""
CHATTER = frozenset(_CHATTER.split())
# Runs of capitalised words in a programme's blurb: "Becky Malby", "Bradford on Avon Leg Club".
PROPER_NAME = re.compile(r"[A-Z][\w'’\-]*+(?:(?: (?:on|upon))? [A-Z][\w'’\-]*+)++")


@dataclass(frozen=True)
class Theme:
    term: str
    count: int  # posts in the part using it
    score: float  # z-score of its log-odds against the rest of the event


def _key(name: str) -> str:
    """A name as terms are keyed: its words, lower case, one space apart."""
    return " ".join(tokens(name))


def programme_names(
    listed: Iterable[str], blurbs: Iterable[str] = ()
) -> dict[str, tuple[str, bool]]:
    """{key: (name as written, listed)}: the names a theme keeps whole. `listed` are the sessions'
    keywords and speakers; `blurbs` their descriptions, whose runs of capitalised words are names
    too ("Co Producing Leeds", "Salisbury NHS Foundation Trust")."""
    names: dict[str, tuple[str, bool]] = {}
    for name in listed:
        if len(tokens(name)) > 1:
            names.setdefault(_key(name), (name, True))
    whole = [f" {key} " for key in names]
    for blurb in blurbs:
        for match in PROPER_NAME.finditer(blurb):
            name, key = match.group(), _key(match.group())
            # a run inside a listed name ('Voluntary Service' of the Queen's Award) is no name
            if len(tokens(name)) > 1 and not any(f" {key} " in w for w in whole):
                names.setdefault(key, (name, False))
    return names


def _fragments(names: Mapping[str, tuple[str, bool]]) -> dict[str, str]:
    """Terms that are only part of a name -> the name they are part of: its two-word phrases
    ('avon leg', 'foundation trust'), or the one content word of a listed name ('active' of
    'Get Active'); a listed name before one from a blurb, then the shortest."""
    out: dict[str, tuple[bool, int, str]] = {}
    for key, (name, listed) in names.items():
        found = terms(name)
        alone = listed and len(found) == 1
        for term in found:
            if (" " not in term and not alone) or term in names or term == key:
                continue
            choice = (not listed, len(key), key)
            if term not in out or choice < out[term]:
                out[term] = choice
    return {term: key for term, (_, _, key) in out.items()}


def fold_names(counts: Counter[str], names: Mapping[str, tuple[str, bool]]) -> Counter[str]:
    """`counts` with every fragment of a programme name counted as the whole name (as many posts
    as its most used fragment: a post naming it holds every fragment) and dropped itself."""
    fragments = _fragments(names)
    out: Counter[str] = Counter()
    for term, n in counts.items():
        whole = fragments.get(term)
        if whole is None:
            out[term] += n
        else:
            out[whole] = max(out[whole], n)
    return out


def _chatter(term: str, names: Mapping[str, object]) -> bool:
    """A word of chatter, or a phrase holding one ('worth watching', 'coproduction looks'); never
    a programme name."""
    return term not in names and any(word in CHATTER for word in term.split())


def distinctive_terms(
    part: Counter[str],
    event: Counter[str],
    limit: int = 6,
    min_count: int = 2,
    skip: Sequence[str] = (),
    min_z: float = 1.0,  # one standard error: small sessions have themes too; the top few are shown
    names: Mapping[str, object] | None = None,
) -> list[Theme]:
    """Terms most distinctive of `part` against the rest of `event`: log-odds with an informative
    Dirichlet prior (Monroe, Colaresi & Quinn 2008), z > `min_z`; bigrams absorb their own words;
    never a term in `skip` or with a word of chatter (CHATTER), unless it is one of `names`
    (`programme_names`)."""
    n_part, n_event = sum(part.values()), sum(event.values())
    n_rest = max(n_event - n_part, 0)
    a0 = max(min(n_event, 2000), 1) * 0.1  # prior strength: shrinks rare words towards the event
    scored = []
    for term, y_i in part.items():
        if y_i < min_count or term in skip or _chatter(term, names or {}):
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
