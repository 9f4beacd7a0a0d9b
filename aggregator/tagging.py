"""Pure tagging: a post + the programme -> (session, score, reason). No I/O."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aggregator.config import Config, SessionConfig

__all__ = ["Decision", "Programme", "TagInput", "decide", "normalise"]

ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
TAG_OR_HANDLE = re.compile(r"[#@](\w+)")
POSSESSIVE = re.compile(r"(\w)['’]s\b")
PLURAL = re.compile(r"(?<=\w{3})s\b")
NON_WORD = re.compile(r"[^\w]+")


def normalise(text: str) -> str:
    """One comparable form for posts and cues: NFKC, no zero-width, CamelCase tags split,
    possessives, plural -s and punctuation dropped, '&' as 'and', case folded, single spaces."""
    text = unicodedata.normalize("NFKC", text).translate(ZERO_WIDTH)
    text = TAG_OR_HANDLE.sub(lambda m: " " + CAMEL.sub(" ", m.group(1)) + " ", text)
    text = POSSESSIVE.sub(r"\1", text).replace("&", " and ")
    text = NON_WORD.sub(" ", text.casefold()).replace("_", " ")
    text = PLURAL.sub("", text)  # 'Queens award' and "Queen's Award" must meet
    return f" {' '.join(text.split())} "


def squash(text: str) -> str:
    return normalise(text).replace(" ", "")


@dataclass(frozen=True)
class TagInput:
    post_id: str
    created_at: datetime  # aware, or naive UTC
    text: str
    hashtags: Sequence[str] = ()
    mentions: Sequence[str] = ()
    reply_to: str | None = None


@dataclass(frozen=True)
class Decision:
    session_id: str | None
    score: float
    reason: str


@dataclass(frozen=True)
class Cue:
    phrase: str  # normalised, space-padded
    squashed: str
    label: str  # as the organiser wrote it
    sessions: tuple[str, ...]


@dataclass
class Programme:
    sessions: tuple[SessionConfig, ...]
    grace: timedelta = timedelta(0)
    cues: list[Cue] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Config) -> Programme:
        prog = cls(config.sessions, timedelta(minutes=config.event.grace_minutes))
        owners: dict[str, tuple[str, set[str]]] = {}
        for s in config.sessions:
            for label in (*s.speakers, *s.keywords, *s.hashtags, *s.handles):
                key = normalise(label)
                if key.strip():
                    owners.setdefault(key, (label, set()))[1].add(s.id)
        order = {s.id: i for i, s in enumerate(config.sessions)}
        prog.cues = [
            Cue(key, key.replace(" ", ""), label, tuple(sorted(ids, key=order.__getitem__)))
            for key, (label, ids) in owners.items()
        ]
        # Longer phrases first, so 'Bradford on Avon Leg Club' is reported over 'Leg Club'.
        prog.cues.sort(key=lambda c: -len(c.phrase))
        return prog

    def fingerprint(self) -> str:
        """Changes whenever the sessions, cues or grace change: the signal to re-tag everything."""
        parts = [str(self.grace)] + [repr(s) for s in self.sessions]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def live(self, when: datetime) -> SessionConfig | None:
        """The session running at `when` (start inclusive, end exclusive), grace included."""
        for s in self.sessions:
            if s.start <= when < s.end:
                return s
        for s in self.sessions:
            if s.start - self.grace <= when < s.end + self.grace:
                return s
        return None

    def settle(self, ids: Iterable[str], when: datetime) -> str:
        """Of several candidate sessions: the one live, else the latest already started, else the first."""
        chosen = [s for s in self.sessions if s.id in set(ids)]
        live = self.live(when)
        if live and live in chosen:
            return live.id
        started = [s for s in chosen if s.start <= when]
        return (started[-1] if started else chosen[0]).id


def find_cues(post: TagInput, programme: Programme) -> list[Cue]:
    text = normalise(post.text)
    tokens = {
        squash(t) for t in (*post.hashtags, *post.mentions, *TAG_OR_HANDLE.findall(post.text))
    }
    found: list[Cue] = []
    for cue in programme.cues:
        matched = cue.phrase in text or cue.squashed in tokens
        # a cue inside a longer one already found ('Leg Club' in 'Bradford on Avon Leg Club') adds nothing
        if matched and not any(cue.phrase in f.phrase for f in found):
            found.append(cue)
    return found


def decide(post: TagInput, programme: Programme, parent: Decision | None = None) -> Decision:
    """Apply the rules: distinctive cue > shared cue settled by time > live session > parent > general."""
    when = post.created_at if post.created_at.tzinfo else post.created_at.replace(tzinfo=UTC)
    cues = find_cues(post, programme)
    distinctive = [c for c in cues if len(c.sessions) == 1]
    if distinctive:
        ids = [c.sessions[0] for c in distinctive]
        sid = programme.settle(ids, when)
        named = ", ".join(f"'{c.label}'" for c in distinctive if c.sessions[0] == sid)
        return Decision(sid, 1.0, f"keyword {named}")
    if cues:
        ids = [i for c in cues for i in c.sessions]
        sid = programme.settle(ids, when)
        named = ", ".join(f"'{c.label}'" for c in cues)
        return Decision(sid, 0.8, f"shared keyword {named}, settled by time")
    if parent is not None and post.reply_to:
        return Decision(parent.session_id, 0.6, f"reply to {post.reply_to} ({parent.reason})")
    live = programme.live(when)
    if live:
        return Decision(live.id, 0.5, f"posted during {live.id}")
    return Decision(None, 0.3, "no cue, outside every session")
