"""What the story needs to know of one post, found once by `pipeline.analyse` and stored in its
`postanalysis` row: the editorial classes of the post on its own (reports/editorial.py), a digest of
its words for finding copies, a personal health disclosure and the author's role from their profile
(aggregator/safeguarding.py), theme terms and sentiment (reports/text.py).

Pure. Reads the first `MAX_ANALYSED` characters of a post and `PROFILE_READ` of a profile, so a
megabyte post costs no more than a long one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from aggregator.safeguarding import disclosure, find_identifiers, role_from_profile
from aggregator.workers import Died
from connectors.html import html_to_text
from reports.editorial import Context, Item, classify, copy_key, is_repost, is_speaker_quote
from reports.speech import URL
from reports.text import ANALYSER, MAX_ANALYSED, clean_text, sentiment, terms

__all__ = [
    "ALONE",
    "FAILED",
    "PROFILE_READ",
    "Features",
    "Row",
    "analyse_rows",
    "features",
    "links",
    "outcomes",
    "profile_text",
    "unreadable",
]

PROFILE_READ = 2_000  # characters of an author's profile read for their role
# The analyser of a post whose analysis failed (`unreadable`): not tried again until the post
# changes or the analyser does, and found in postanalysis by this name.
FAILED = f"{ANALYSER} failed"
# The rules that need no other post: nothing is a copy and no account a spammer yet (the story
# decides those over the whole event, from `copy_key`, `repost` and `spam`).
ALONE = Context(copies=frozenset(), copies_of={}, spam_posts=frozenset(), spam_accounts=frozenset())


@dataclass(frozen=True)
class Features:
    terms: list[str]
    polarity: float
    subjectivity: float
    question: bool
    action: bool  # a pledge
    technical: bool
    low_content: bool
    spam: bool
    quote: bool
    speaker: str | None
    repost: bool
    links: list[str] | None  # None: none
    copy_key: str | None
    disclosure: str | None
    disclosure_reason: str | None
    role: str | None

    def values(self) -> dict[str, object]:
        """The fields by name (the lists shared, not copied: a Features is never changed)."""
        return dict(vars(self))


def profile_text(profile: str | None) -> str | None:
    """A profile as plain text: Mastodon's note is HTML; other sources give text."""
    if not profile:
        return None
    plain = html_to_text(clean_text(profile[:PROFILE_READ]))
    return " ".join(plain.split()) or None


def _digest(key: str) -> str | None:
    return hashlib.blake2b(key.encode(), digest_size=10).hexdigest() if key else None


def links(text: str) -> list[str]:
    """The links a text holds, without trailing punctuation or slash, lower case: one link posted
    again and again by an account is spam, however it was written (reports/editorial.py)."""
    found = (m.group().rstrip(".,;:!?)]'\"”’").rstrip("/").casefold() for m in URL.finditer(text))
    return sorted(set(found))


def _without_identifiers(text: str) -> str:
    """The text with every personal identifier blanked: never a theme, whatever the settings."""
    for found in reversed(find_identifiers(text)):
        text = f"{text[: found.start]} {text[found.end :]}"
    return text


def features(text: str, profile: str | None = None) -> Features:
    """Everything the story needs from one post's text (and its author's profile, where the source
    gives one: it only ever makes the disclosure rules more careful)."""
    text = clean_text(text[:MAX_ANALYSED])
    classes = classify(Item("", "", text), ALONE)
    # classify has found the quote, unless it stopped at spam
    quoted = is_speaker_quote(text) if classes & {"quote", "spam"} else None
    role = role_from_profile(profile_text(profile))
    found = disclosure(text, role)
    polarity, subjectivity = sentiment(text)
    return Features(
        terms=terms(_without_identifiers(text)), polarity=polarity, subjectivity=subjectivity,
        question="question" in classes, action="pledge" in classes,
        technical="technical" in classes, low_content="low_content" in classes,
        spam="spam" in classes, quote=quoted is not None, speaker=quoted[1] if quoted else None,
        repost=is_repost(text), links=links(text) or None, copy_key=_digest(copy_key(text)),
        disclosure=found.kind if found else None, disclosure_reason=found.reason if found else None,
        role=role,
    )  # fmt: skip


def unreadable() -> Features:
    """What is stored for a post whose analysis failed: low content, so it is counted but never
    shown, quoted or made a theme unless the organisers pin it; no terms, neutral sentiment."""
    return Features(
        terms=[], polarity=0.0, subjectivity=0.0, question=False, action=False, technical=False,
        low_content=True, spam=False, quote=False, speaker=None, repost=False, links=None,
        copy_key=None, disclosure=None, disclosure_reason=None, role=None,
    )  # fmt: skip


# A post to analyse: its key, the start of its text and of its author's profile (or None).
Row = tuple[int, str, str | None]
Analyser = Callable[[str, str | None], Features]


def analyse_rows(
    rows: Sequence[Row], analyser: Analyser = features
) -> list[dict[str, object] | str]:
    """Each row's `features(...).values()`, in order; for a post whose analysis raises, the error
    in one line instead, so one hostile post never costs the others. What a worker process runs
    (aggregator.workers); `analyser` is `features` unless a caller brings its own."""
    out: list[dict[str, object] | str] = []
    for _, text, profile in rows:
        try:
            out.append(analyser(text, profile).values())
        except Exception as exc:  # hostile input: whatever one post raises is that post's alone
            out.append(f"{type(exc).__name__}: {exc}"[:200])
    return out


def outcomes(
    rows: Sequence[Row], results: Sequence[dict[str, object] | str | Died[Row]]
) -> Iterator[tuple[int, str, dict[str, object], str | None]]:
    """Each row's key, analyser and features to store, with why its analysis failed (None when it
    did not): `analyse_rows`'s results, or `Died` for a post that ended its worker process; a
    failed post is stored `unreadable` under FAILED."""
    for (pk, *_), found in zip(rows, results, strict=True):
        if isinstance(found, dict):
            yield pk, ANALYSER, found, None
        else:
            yield pk, FAILED, unreadable().values(), found.why if isinstance(found, Died) else found
