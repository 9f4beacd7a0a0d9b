"""The wall's rules (docs/live.md, "The wall and moderation"): whether one post is shown on the venue
screen, and why not. Pure: the post, what the curation file and the moderators' decisions say of it,
and the mode.

In order: hidden (the curation file's exclude or a moderator's hide) and muted accounts are never
shown; a post a moderator approved or pinned is; a flagged personal health disclosure is held for a
moderator whatever the mode; blocked accounts and blocked words (the default profanity list plus the
block list, less the allow list) are not shown; in manual mode only approved posts (and allowed
accounts') are shown, in automatic mode everything else is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from storage.moderation import PostState, State

__all__ = ["PROFANITY", "STATUSES", "Verdict", "blocked_word", "verdict"]

# Whole words, compared case-folded. A short default list of English swear words and slurs; the
# moderation page adds words to block and allows words (a place name that contains none of these
# but is caught by a longer list an event adds, say).
_PROFANITY = """
    arse arsehole arseholes asshole assholes bastard bastards bellend bitch bitches bollocks
    bullshit cock cocks crap cunt cunts dick dickhead dickheads fag faggot faggots fuck
    fucked fucker fuckers fucking fucks motherfucker motherfuckers nigga nigger niggers piss
    pissed prick pricks retard retarded shit shite shits shitty slag slut sluts spastic twat
    twats wank wanker wankers whore whores"""
PROFANITY = frozenset(_PROFANITY.split())
WORD = re.compile(r"\w+")
# Each status, in the order the moderation page lists the counts.
STATUSES = ("shown", "pending", "held", "blocked", "hidden", "muted")


@dataclass(frozen=True)
class Verdict:
    status: str  # one of STATUSES
    reason: str  # for the moderation page: why, and who decided

    @property
    def shown(self) -> bool:
        return self.status == "shown"


def blocked_word(text: str, state: State) -> str | None:
    """The first blocked word in `text`, or None."""
    blocked = (PROFANITY | state.blocked_words) - state.allowed_words
    return next((w for w in _words(text) if w in blocked), None)


def _words(text: str) -> Iterable[str]:
    return (m.group().casefold() for m in WORD.finditer(text))


def verdict(
    account: str, text: str, state: State, post: PostState, filed: Iterable[str],
    muted_by_file: bool, disclosure: bool,
) -> Verdict:  # fmt: skip
    """Whether the post is on the wall. `account`: its author's account key; `filed`: the curation
    file's entries for it, as `where` strings of exclude/highlight entries ('exclude[2]');
    `disclosure`: flagged as a personal health disclosure."""
    filed = list(filed)
    excluded = next((w for w in filed if w.startswith("exclude")), None)
    if excluded:
        return Verdict("hidden", f"excluded by the curation file ({excluded})")
    pinned_by_file = any(w.startswith("highlight") for w in filed)
    if post.hidden and not pinned_by_file:  # where they disagree, the curation file wins
        return Verdict("hidden", f"hidden by {post.said['shown']}")
    if muted_by_file:
        return Verdict("muted", "account muted by the curation file")
    if account in state.muted:
        return Verdict("muted", f"account muted by {state.muted[account]}")
    if post.shown == "approve":
        return Verdict("shown", f"approved by {post.said['shown']}")
    if post.pinned:
        return Verdict("shown", f"pinned by {post.said['pinned']}")
    if pinned_by_file:
        return Verdict("shown", "pinned by the curation file")
    if disclosure:
        return Verdict("held", "a personal health disclosure: held until a moderator approves it")
    if account in state.blocked:
        return Verdict("blocked", "account on the block list")
    if (word := blocked_word(text, state)) is not None:
        return Verdict("blocked", f"blocked word “{word}”")
    if state.mode == "manual":
        if account in state.allowed:
            return Verdict("shown", "account on the allow list")
        return Verdict("pending", "manual mode: waiting for a moderator's approval")
    return Verdict("shown", "automatic mode")
