"""Pure tagging: a post + the programme -> (session, score, reason). No I/O.

The rules and the text normalisation are documented for organisers in docs/tagging.md.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate

from aggregator.clock import as_utc
from aggregator.settings import Config, SessionConfig

__all__ = [
    "RULES_VERSION",
    "Cue",
    "Decision",
    "Evaluation",
    "Explanation",
    "Programme",
    "TagInput",
    "decide",
    "decide_all",
    "evaluate",
    "explain",
    "normalise",
    "run_together",
]

RULES_VERSION = "3"  # part of the fingerprint: changing the rules re-tags every stored post
# Invisible characters that split or glue words without showing: zero-width, soft hyphen, bidi controls.
INVISIBLE = dict.fromkeys(
    (*map(ord, "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"), *range(0x202A, 0x202F),
     *range(0x2066, 0x206A)),
    None,
)  # fmt: skip
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# CamelCase boundaries (#LegClub, @BerylInstitute), but not the plural of an acronym (#STPs).
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])(?![A-Z]s(?![a-z]))")
POSSESSIVE = re.compile(r"(?<=\w)['’ʼ`´]s\b")
NON_WORD = re.compile(r"[\W_]+")
TAG_OR_HANDLE = re.compile(r"[#@](\w+)")
# Dropped only when comparing the 'reduced' forms: 'older adults in the hospital' still names the cue.
FILLER = frozenset(
    {"and", "the", "of", "for", "on", "upon", "in", "a", "an", "to", "at", "by", "v", "vs"}
)
PREFIX_MIN = 6  # a cue this long may open a run-together hashtag: #legclubrocks


def normalise(text: str) -> str:
    """One comparable form for posts and cues: words in lower case, single-spaced (docs/tagging.md)."""
    text = unicodedata.normalize("NFKC", text).translate(INVISIBLE)
    text = CAMEL.sub(" ", text)
    text = POSSESSIVE.sub("", text)
    return " ".join(_singular(word) for word in _folded(text).split())


def run_together(text: str) -> str:
    """A hashtag's one form, whatever its case, width or invisible characters: its words run together
    in lower case, without a final plural -s ('#KidsRead', '#kidsread', '＃ＫＩＤＳＲＥＡＤ' -> 'kidsread')."""
    text = unicodedata.normalize("NFKC", text).translate(INVISIBLE)
    return _singular(_folded(text).replace(" ", ""))


def _folded(text: str) -> str:
    """Case-folded without accents, '&' as 'and', every run of other non-letters one space."""
    text = text.replace("&", " and ")
    if not text.isascii():  # ASCII has no accents and no other forms
        # Case-fold, then drop accents, so 'Zoë', 'ZOE' and 'zoe' meet.
        text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text.casefold()))
        text = "".join(c for c in text if not unicodedata.combining(c))
        text = unicodedata.normalize("NFKC", text)
    return NON_WORD.sub(" ", text.casefold())


def _singular(word: str) -> str:
    """Without a plural (or possessive) -s, from words of 4+ letters: 'Queens award' and "Queen's
    Award" must meet. A string method, not a regex: a word of a million s's is read once."""
    return word[: max(3, len(word.rstrip("s")))]


def _keys(label: str) -> tuple[str, str]:
    """A cue's or a hashtag's two comparable forms: split into words ('kidread') and run together."""
    return normalise(label).replace(" ", ""), run_together(label)


def _reduced(words: Sequence[str]) -> list[str]:
    return [w for w in words if w not in FILLER]


@dataclass(frozen=True)
class _Joined:
    """Words run together, and the offsets where each starts or ends."""

    hay: str
    edges: frozenset[int]

    @classmethod
    def of(cls, words: Sequence[str]) -> _Joined:
        return cls("".join(words), frozenset(accumulate(map(len, words), initial=0)))

    def spans(self, needle: str) -> bool:
        """`needle` (words run together) spans whole words: 'legclub' in ['the','leg','club']."""
        if not needle:
            return False
        i = self.hay.find(needle)
        while i != -1:
            if i in self.edges and i + len(needle) in self.edges:
                return True
            i = self.hay.find(needle, i + 1)
        return False


@dataclass(frozen=True)
class TagInput:
    post_id: str
    created_at: datetime  # aware, or naive UTC
    text: str
    hashtags: Sequence[str] = ()
    mentions: Sequence[str] = ()
    reply_to: str | None = None
    platform: str = ""


@dataclass(frozen=True)
class Said:
    """What a post says, in the forms cues are compared with; worked out once per post."""

    words: _Joined
    reduced: _Joined  # without the FILLER words
    tags: tuple[str, ...]  # its hashtags and handles in both forms (_keys), sorted

    @classmethod
    def of(cls, post: TagInput) -> Said:
        text = URL.sub(" ", unicodedata.normalize("NFKC", post.text).translate(INVISIBLE))
        words = normalise(text).split()
        extra = {
            t.split("@")[0] for t in (*TAG_OR_HANDLE.findall(text), *post.hashtags, *post.mentions)
        }
        tags = {key for t in extra for key in _keys(t) if key}
        return cls(_Joined.of(words), _Joined.of(_reduced(words)), tuple(sorted(tags)))

    def tagged(self, key: str) -> bool:
        """A hashtag or handle is `key`, or opens with it when it is long enough: #legclubrocks."""
        if not key:
            return False
        i = bisect_left(self.tags, key)  # the tags opening with `key` sort first from here
        if i == len(self.tags):
            return False
        return self.tags[i] == key or (len(key) >= PREFIX_MIN and self.tags[i].startswith(key))


@dataclass(frozen=True)
class Decision:
    session_id: str | None
    score: float
    reason: str


@dataclass(frozen=True)
class Cue:
    label: str  # as the organiser wrote it
    kind: str  # speaker | keyword | hashtag | handle
    words: tuple[str, ...]  # normalised
    joined: str  # run_together(label)
    sessions: tuple[str, ...]  # programme order

    @property
    def full(self) -> str:
        return "".join(self.words)

    @property
    def short(self) -> str:
        return "".join(_reduced(self.words))

    def describe(self) -> str:
        return f"{self.kind} '{self.label}'"

    def found_in(self, said: Said) -> bool:
        """Whole words in the text (spaces, hyphens, CamelCase and run-together alike), or a hashtag
        or handle in either form (_keys), or opening one."""
        words, reduced = said.words, said.reduced
        if words.spans(self.full) or reduced.spans(self.short) or words.spans(self.joined):
            return True
        return said.tagged(self.full) or said.tagged(self.joined)


@dataclass
class _Named:
    """A cue while the programme is read: the labels that meet in either form, and their sessions."""

    label: str
    kind: str
    sessions: set[str] = field(default_factory=set)

    def add(self, label: str, kind: str, session: str) -> None:
        if len(normalise(label).split()) > len(normalise(self.label).split()):
            self.label, self.kind = label, kind  # the form with most words matches most ways
        self.sessions.add(session)


@dataclass
class Programme:
    sessions: tuple[SessionConfig, ...]
    grace: timedelta = timedelta(0)
    cues: list[Cue] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Config) -> Programme:
        event_tags = {key for h in config.event.hashtags for key in _keys(h)}
        owners: dict[str, _Named] = {}  # by either form (_keys): labels that meet are one cue
        for s in config.sessions:
            named = [("speaker", x) for x in s.speakers] + [("keyword", x) for x in s.keywords]
            named += [("hashtag", f"#{x}") for x in s.hashtags]
            named += [("handle", f"@{x}") for x in s.handles]
            for kind, label in named:
                keys = _keys(label)
                if not keys[0] or event_tags.intersection(keys):
                    continue  # the event's own hashtags say nothing of a session
                owner = next((owners[k] for k in keys if k in owners), None) or _Named(label, kind)
                owner.add(label, kind, s.id)
                for key in keys:
                    owners.setdefault(key, owner)
        order = {s.id: i for i, s in enumerate(config.sessions)}
        unique = {id(owner): owner for owner in owners.values()}.values()
        cues = [
            Cue(n.label, n.kind, tuple(normalise(n.label).split()), run_together(n.label),
                tuple(sorted(n.sessions, key=lambda s: order.get(s, len(order)))))
            for n in unique
        ]  # fmt: skip
        # Longest first, so 'Bradford on Avon Leg Club' is counted and the 'Leg Club' inside it is not.
        cues.sort(key=lambda c: (-len(c.full), c.full))
        return cls(config.sessions, timedelta(minutes=config.event.grace_minutes), cues)

    def fingerprint(self) -> str:
        """Changes whenever the sessions, cues, grace or rules change: the signal to re-tag everything."""
        parts = [RULES_VERSION, str(self.grace)] + [repr(s) for s in self.sessions]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def live(self, when: datetime) -> tuple[SessionConfig | None, bool]:
        """The session running at `when` (start inclusive, end exclusive) and whether only by grace."""
        for s in self.sessions:
            if s.start <= when < s.end:
                return s, False
        for s in self.sessions:
            if s.start - self.grace <= when < s.end + self.grace:
                return s, True
        return None, False

    def settle(self, ids: Iterable[str], when: datetime) -> tuple[str, str]:
        """Of several candidate sessions: the one live, else the latest already started, else the first."""
        wanted = set(ids)
        chosen = [s for s in self.sessions if s.id in wanted]
        live, _ = self.live(when)
        if live in chosen:
            return live.id, f"posted during {live.id}"
        started = [s for s in chosen if s.start <= when]
        if started:
            return started[-1].id, f"{started[-1].id} is the latest already started"
        return chosen[0].id, f"posted before all of them: {chosen[0].id} comes first"


def find_cues(post: TagInput, programme: Programme) -> list[Cue]:
    """Every cue the post names, longest first; a cue inside a longer one found adds nothing."""
    said = Said.of(post)
    found: list[Cue] = []
    for cue in programme.cues:
        if cue.found_in(said) and not any(cue.full in f.full for f in found):
            found.append(cue)
    return found


@dataclass(frozen=True)
class Explanation:
    """A decision and everything behind it, for `aggregator tag --explain`."""

    decision: Decision
    cues: tuple[Cue, ...]
    live: str | None
    in_grace: bool
    parent: Decision | None


def _by_cues(cues: list[Cue], programme: Programme, when: datetime) -> Decision:
    """Distinctive cues outvote shared ones; among the sessions named most often, time settles it."""
    distinctive = [c for c in cues if len(c.sessions) == 1]
    counted = distinctive or cues
    votes = Counter(sid for c in counted for sid in c.sessions)
    top = max(votes.values())
    best = [sid for sid in votes if votes[sid] == top]
    named = ", ".join(c.describe() for c in counted)
    if len(best) == 1:
        shared = "" if distinctive else f" (shared by {', '.join(counted[0].sessions)})"
        return Decision(best[0], 1.0 if distinctive else 0.8, named + shared)
    sid, how = programme.settle(best, when)
    if distinctive:
        return Decision(sid, 0.9, f"{named}: settled by time, {how}")
    started = how.startswith("posted during")
    return Decision(sid, 0.8 if started else 0.7, f"{named} (shared by {', '.join(best)}): {how}")


def _root(reason: str) -> str:
    """A reply's reason names the thread's first reason, not a chain of 'reply to (reply to (…))'."""
    if reason.startswith("reply to ") and reason.endswith(")") and " (" in reason:
        return reason[reason.index(" (") + 2 : -1]
    return reason


def explain(post: TagInput, programme: Programme, parent: Decision | None = None) -> Explanation:
    """Apply the rules: cues > a reply's parent > the live session > general; say why."""
    when = as_utc(post.created_at)
    cues = find_cues(post, programme)
    live, in_grace = programme.live(when)
    parent = parent if post.reply_to else None
    if cues:
        decision = _by_cues(cues, programme, when)
    elif parent is not None:
        decision = Decision(
            parent.session_id, 0.6, f"reply to {post.reply_to} ({_root(parent.reason)})"
        )
    elif live is not None:
        grace = " (within the grace minutes)" if in_grace else ""
        decision = Decision(live.id, 0.4 if in_grace else 0.5, f"posted during {live.id}{grace}")
    else:
        decision = Decision(None, 0.3, "no cue, posted outside every session")
    return Explanation(decision, tuple(cues), live.id if live else None, in_grace, parent)


def decide(post: TagInput, programme: Programme, parent: Decision | None = None) -> Decision:
    """The session for one post (None = general), with a score and a reason."""
    return explain(post, programme, parent).decision


Key = tuple[str, str]  # (platform, post id)
Adjust = Callable[[TagInput, Decision], Decision]


def decide_all(
    posts: Iterable[TagInput],
    programme: Programme,
    known: Mapping[Key, Decision] | None = None,
    adjust: Adjust | None = None,
) -> dict[Key, Decision]:
    """Decide many posts in time order, each reply after its parent; `known` holds earlier decisions.

    `adjust` may change a decision (organisers' corrections) before any reply follows it.
    """
    ordered = sorted(posts, key=lambda p: (as_utc(p.created_at), p.platform, p.post_id))
    batch = {(p.platform, p.post_id) for p in ordered}
    decided: dict[Key, Decision] = dict(known or {})
    out: dict[Key, Decision] = {}
    waiting: dict[Key, list[TagInput]] = {}

    def run(first: TagInput) -> None:
        stack = [first]
        while stack:
            post = stack.pop()
            key = (post.platform, post.post_id)
            parent = decided.get((post.platform, post.reply_to or ""))
            d = decide(post, programme, parent)
            out[key] = decided[key] = adjust(post, d) if adjust else d
            stack.extend(reversed(waiting.pop(key, [])))

    for post in ordered:
        parent_key = (post.platform, post.reply_to or "")
        if post.reply_to and parent_key in batch and parent_key not in out:
            waiting.setdefault(parent_key, []).append(post)  # its parent was posted later (clocks)
        else:
            run(post)
    for post in ordered:  # replies in a cycle of replies: decided without a parent, in time order
        if (post.platform, post.post_id) not in out:
            run(post)
    return out


@dataclass(frozen=True)
class Evaluation:
    """How decisions compare with an organiser's labels (None = general)."""

    pairs: tuple[tuple[str | None, str | None], ...]  # (expected, got)

    @property
    def correct(self) -> int:
        return sum(1 for e, g in self.pairs if e == g)

    @property
    def accuracy(self) -> float:
        return self.correct / len(self.pairs) if self.pairs else 0.0

    def per_session(self) -> dict[str | None, tuple[float | None, float | None, int]]:
        """session -> (precision, recall, labelled posts); None where nothing to divide by."""
        names = list(dict.fromkeys(x for pair in self.pairs for x in pair))
        out = {}
        for name in names:
            hits = sum(1 for e, g in self.pairs if e == g == name)
            got = sum(1 for _, g in self.pairs if g == name)
            expected = sum(1 for e, _ in self.pairs if e == name)
            out[name] = (
                hits / got if got else None,
                hits / expected if expected else None,
                expected,
            )
        return out

    def confusions(self, top: int = 5) -> list[tuple[tuple[str | None, str | None], int]]:
        """The most common (expected, got) mistakes, most frequent first."""
        wrong = Counter((e, g) for e, g in self.pairs if e != g)
        return sorted(wrong.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top]


def evaluate(pairs: Iterable[tuple[str | None, str | None]]) -> Evaluation:
    """Accuracy, per-session precision and recall, and confusions from (expected, got) pairs."""
    return Evaluation(tuple(pairs))
