"""Pure tagging: a post + the programme -> (session, score, reason). No I/O.

The rules and the text normalisation are documented for organisers in docs/tagging.md.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from itertools import accumulate
from typing import Generic, NamedTuple, TypeVar

import ahocorasick  # type: ignore[import-not-found]  # no type information shipped

from aggregator.clock import as_utc
from aggregator.settings import Config, SessionConfig

__all__ = [
    "RULES_VERSION",
    "Cue",
    "CueFinder",
    "Decider",
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
INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060\ufeff\u202a-\u202e\u2066-\u2069]")
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# CamelCase boundaries (#LegClub, @BerylInstitute), but not the plural of an acronym (#STPs): the
# capital opening a word, after a small letter or digit, or after a capital when a small letter
# follows it (not a plural s). Matched from the capital, so the scan skips everything else.
CAMEL = re.compile(r"[A-Z](?:(?<=[a-z0-9][A-Z])|(?<=[A-Z][A-Z])(?=[a-z])(?!s(?![a-z])))")
POSSESSIVE = re.compile(r"['’ʼ`´](?<=\w['’ʼ`´])s\b")
NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# Words are runs of letters and digits ('_' and every other character part them), found in two
# passes: UTF-8 bytes translated at once (ASCII letters in lower case, digits kept, other ASCII a
# space, the bytes of other characters kept), then the other characters that are no letter or
# digit made spaces.
ASCII_FOLD = bytes(ord(chr(b).lower()) if chr(b).isalnum() else 32 for b in range(128))
ASCII_FOLD += bytes(range(128, 256))
NON_ASCII_GAP = re.compile(r"[^\x00-\x7f\w]+")
VARIATION_SELECTOR = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
TAG_OR_HANDLE = re.compile(r"[#@](\w+)")
# Dropped only when comparing the 'reduced' forms: 'older adults in the hospital' still names the cue.
FILLER = frozenset(
    {"and", "the", "of", "for", "on", "upon", "in", "a", "an", "to", "at", "by", "v", "vs"}
)
PREFIX_MIN = 6  # a cue this long may open a run-together hashtag: #legclubrocks
TAG_EDGE = "\x00"  # where a hashtag or handle starts and ends for the automaton: never in a word
REMEMBERED_TAGS = 1 << 16  # hashtags and handles whose forms are kept: posts repeat them
REMEMBERED_LENGTH = 100  # ... when no longer than this


def normalise(text: str) -> str:
    """One comparable form for posts and cues: words in lower case, single-spaced (docs/tagging.md)."""
    return " ".join(_words(text))


def run_together(text: str) -> str:
    """A hashtag's one form, whatever its case, width or invisible characters: its words run together
    in lower case, without a final plural -s ('#KidsRead', '#kidsread', '＃ＫＩＤＳＲＥＡＤ' -> 'kidsread')."""
    return _singular("".join(_folded(_visible(text))))


def _visible(text: str) -> str:
    """In NFKC, without invisible characters (ASCII has neither other forms nor invisible ones)."""
    return text if text.isascii() else INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


def _words(text: str) -> list[str]:
    """normalise's words: CamelCase split, possessives dropped, folded, each without a plural."""
    text = POSSESSIVE.sub("", CAMEL.sub(_spaced, _visible(text)))
    return [_singular(word) if word[-1] == "s" else word for word in _folded(text)]


def _spaced(capital: re.Match[str]) -> str:
    return " " + capital[0]


def _folded(text: str) -> list[str]:
    """The words (runs of letters and digits), case-folded without accents, '&' as 'and'."""
    text = text.replace("&", " and ")
    if not text.isascii() and all(map(_separator, "".join(NON_ASCII.findall(text)))):
        text = NON_ASCII.sub(" ", text)  # emoji, quotation marks, dashes: the common case
    if not text.isascii():  # ASCII has no accents and no other forms
        # Case-fold, then drop accents, so 'Zoë', 'ZOE' and 'zoe' meet.
        text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text.casefold()))
        text = unicodedata.normalize("NFKC", NON_ASCII.sub(_unaccented, text)).casefold()
    text = text.encode().translate(ASCII_FOLD).decode()
    return (text if text.isascii() else NON_ASCII_GAP.sub(" ", text)).split()


@lru_cache(maxsize=1 << 12)
def _separator(char: str) -> bool:
    """Whether a character (not ASCII) only parts words, whatever surrounds it: neither a letter nor
    a digit, the same case-folded and in every normal form, and never part of a composed
    character (only marks, Mn or Mc, follow a character to compose with it; variation selectors,
    as in emoji, never do)."""
    return (
        not char.isalnum()
        and char.casefold() == char
        and unicodedata.normalize("NFKD", char) == char
        and not unicodedata.combining(char)
        and (unicodedata.category(char) not in ("Mn", "Mc") or bool(VARIATION_SELECTOR.match(char)))
    )


def _unaccented(run: re.Match[str]) -> str:
    """A run of non-ASCII characters without its combining marks (ASCII has none)."""
    return "".join(c for c in run.group() if not unicodedata.combining(c))


def _without_urls(text: str) -> str:
    """`text` with every web address a space; the regex runs only where one may start."""
    return URL.sub(" ", text) if "://" in text or "www." in text.lower() else text


def _singular(word: str) -> str:
    """Without a plural (or possessive) -s, from words of 4+ letters: 'Queens award' and "Queen's
    Award" must meet. A string method, not a regex: a word of a million s's is read once."""
    return word[: max(3, len(word.rstrip("s")))]


def _keys(label: str) -> tuple[str, str]:
    """A cue's or a hashtag's two comparable forms: split into words ('kidread') and run together."""
    return "".join(_words(label)), run_together(label)


@lru_cache(maxsize=REMEMBERED_TAGS)
def _remembered_keys(tag: str) -> tuple[str, str]:
    return _keys(tag)


def _tag_keys(tag: str) -> tuple[str, str]:
    """_keys of a hashtag or handle, worked out once for the short ones posts repeat."""
    return _remembered_keys(tag) if len(tag) <= REMEMBERED_LENGTH else _keys(tag)


def _reduced(words: Sequence[str]) -> list[str]:
    return [w for w in words if w not in FILLER]


@dataclass(frozen=True)
class TagInput:
    post_id: str
    created_at: datetime  # aware, or naive UTC
    text: str
    hashtags: Sequence[str] = ()
    mentions: Sequence[str] = ()
    reply_to: str | None = None
    platform: str = ""


@dataclass(frozen=True, slots=True)
class Said:
    """What a post says, in the forms cues are compared with; worked out once per post."""

    words: list[str]  # normalised
    tags: set[str]  # its hashtags and handles in both forms (_keys)

    @classmethod
    def of(cls, post: TagInput) -> Said:
        text = _without_urls(_visible(post.text))
        extra = {
            t.split("@")[0] for t in (*TAG_OR_HANDLE.findall(text), *post.hashtags, *post.mentions)
        }
        return cls(_words(text), {key for t in extra for key in _tag_keys(t) if key})


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

    @cached_property
    def full(self) -> str:
        return "".join(self.words)

    @cached_property
    def short(self) -> str:
        return "".join(_reduced(self.words))

    def describe(self) -> str:
        return f"{self.kind} '{self.label}'"


class CueFinder:
    """Every cue of a programme compiled once into Aho-Corasick automata (pyahocorasick): one pass
    over a post finds all the cues it names, however many the programme has. A cue is named when
    (docs/tagging.md) its words, or its run-together form, span whole words of the post's text
    (`spans`: 'legclub' in the, leg, club); or its words without the FILLER words span whole words
    of the text without them (`reduced`); or a hashtag or handle is either of its forms (_keys), or
    opens with one of PREFIX_MIN letters or more (`tags`)."""

    def __init__(self, cues: Sequence[Cue]) -> None:
        spans: dict[str, set[int]] = defaultdict(set)  # needle -> the cues it stands for
        reduced: dict[str, set[int]] = defaultdict(set)
        tags: dict[str, set[int]] = defaultdict(set)
        for i, cue in enumerate(cues):
            for form in {cue.full, cue.joined} - {""}:
                spans[form].add(i)
                # a tag is the form, edge to edge, or opens with it when it is long enough
                tags[TAG_EDGE + form + ("" if len(form) >= PREFIX_MIN else TAG_EDGE)].add(i)
            if cue.short:
                reduced[cue.short].add(i)
        self.spans = _automaton(spans)
        self.reduced = _automaton(reduced)
        self.tags = _automaton(tags)

    def found(self, said: Said) -> set[int]:
        """The positions (in the programme's cues) of every cue `said` names."""
        found = _spanned(self.spans, said.words) | _spanned(self.reduced, _reduced(said.words))
        if said.tags and self.tags is not None:
            hay = TAG_EDGE + TAG_EDGE.join(said.tags) + TAG_EDGE
            for _, (_, cues) in self.tags.iter(hay):
                found.update(cues)
        return found


def _automaton(needles: Mapping[str, set[int]]) -> ahocorasick.Automaton | None:
    """An automaton finding every needle, each with (its length, the cues it stands for); None
    when there is no needle (an empty automaton cannot search)."""
    if not needles:
        return None
    automaton = ahocorasick.Automaton()
    for needle, cues in needles.items():
        automaton.add_word(needle, (len(needle), tuple(sorted(cues))))
    automaton.make_automaton()
    return automaton


def _spanned(automaton: ahocorasick.Automaton | None, words: Sequence[str]) -> set[int]:
    """The cues whose needles occur in `words` run together, starting and ending at word edges."""
    found: set[int] = set()
    if automaton is None:
        return found
    edges: set[int] | None = None  # offsets where a word starts or ends, once something is found
    for last, (length, cues) in automaton.iter("".join(words)):
        if edges is None:
            edges = set(accumulate(map(len, words), initial=0))
        if last + 1 in edges and last + 1 - length in edges:
            found.update(cues)
    return found


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

    @cached_property
    def finder(self) -> CueFinder:
        """The cues compiled for matching, once per programme."""
        return CueFinder(self.cues)

    def fingerprint(self) -> str:
        """Changes whenever the sessions, cues, grace or rules change: the signal to re-tag everything."""
        parts = [RULES_VERSION, str(self.grace)] + [repr(s) for s in self.sessions]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    @cached_property
    def _times(self) -> list[tuple[SessionConfig, datetime, datetime, datetime, datetime]]:
        """Each session with its start and end, then widened by the grace, in UTC: compared with a
        post's time in UTC, field by field."""
        return [
            (s, as_utc(s.start), as_utc(s.end), as_utc(s.start - self.grace),
             as_utc(s.end + self.grace))
            for s in self.sessions
        ]  # fmt: skip

    def live(self, when: datetime) -> tuple[SessionConfig | None, bool]:
        """The session running at `when` (start inclusive, end exclusive) and whether only by grace."""
        for s, start, end, _, _ in self._times:
            if start <= when < end:
                return s, False
        for s, _, _, early, late in self._times:
            if early <= when < late:
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
    found: list[Cue] = []
    for i in sorted(programme.finder.found(Said.of(post))):
        cue = programme.cues[i]
        if not any(cue.full in f.full for f in found):
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
    if len(distinctive) == 1:  # the common case: one distinctive cue, one session
        return Decision(distinctive[0].sessions[0], 1.0, distinctive[0].describe())
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
P = TypeVar("P", bound=TagInput)  # the posts a Decider is given, and gives back decided


class Decider(Generic[P]):
    """The posts of one batch decided as they come, each reply after its parent: decide_all for a
    stream too long to hold (aggregator.tagstage). A reply whose parent is in the batch but not
    decided yet waits for it; `finish` decides the replies still waiting (replies in a cycle, or
    whose parent never came) in time order, as decide_all does. A post is known by its platform
    and id: copies of it in one batch are one post, given where it was first decided with the
    last decision of any copy, as decide_all keeps it.

    `adjust` may change a decision (organisers' corrections) before any reply follows it.
    `remember` says whose decisions to keep for the replies that follow (default: everyone's): it
    must keep every parent a later reply names.
    """

    def __init__(
        self,
        programme: Programme,
        adjust: Callable[[P, Decision], Decision] | None = None,
        remember: Callable[[Key], bool] | None = None,
    ) -> None:
        self.programme, self.adjust, self.remember = programme, adjust, remember
        self.decided: dict[Key, Decision] = {}  # in this batch, those remembered
        self.waiting: dict[Key, list[_Waiting[P]]] = {}  # by the parent each waits for
        self.added = 0

    def add(
        self, post: P, parent_in_batch: bool, known: Decision | None = None
    ) -> list[tuple[P, Decision]]:
        """`post` decided, with the replies that waited for it; nothing while it waits for its
        parent. `known`: the parent's decision from an earlier batch (used when this one has none)."""
        self.added += 1
        waiting = _Waiting(self.added, post, known)
        parent = (post.platform, post.reply_to or "")
        if post.reply_to and parent_in_batch and parent not in self.decided:
            self.waiting.setdefault(parent, []).append(waiting)
            return []
        return list(self._run(waiting).values())

    def finish(self) -> list[tuple[P, Decision]]:
        """The replies still waiting, decided with their `known` parents, each followed by the
        replies waiting for it (one whose parent's run decided it already is left out): first
        those whose parent never came, in time order, then those in cycles, in time order. A post decided again (it waited for a post in its cycle decided after it, or
        it has copies) is given once, with its last decision."""
        done: dict[Key, tuple[P, Decision]] = {}
        # First the replies whose parent never came (the stage thought it might be redone): each
        # with its `known` parent, then its thread after it, as one run would decide them.
        waiting = {
            (w.post.platform, w.post.post_id) for each in self.waiting.values() for w in each
        }
        orphans = [parent for parent in self.waiting if parent not in waiting]
        for w in _in_time(w for parent in orphans for w in self.waiting.pop(parent)):
            done.update(self._run(w))
        # Then what still waits: replies in a cycle, in time order.
        for w in _in_time(w for each in self.waiting.values() for w in each):
            if (w.post.platform, w.post.reply_to or "") in self.waiting:
                done.update(self._run(w))
        return list(done.values())

    def _run(self, first: _Waiting[P]) -> dict[Key, tuple[P, Decision]]:
        """`first` decided, then the replies waiting for it, in time order whatever the order
        they came in, each with the replies waiting for it before the next. A post decided again
        (replying to itself, or a copy of it) keeps its place and takes its last decision."""
        done: dict[Key, tuple[P, Decision]] = {}
        stack = [first]
        while stack:
            w = stack.pop()
            post, key = w.post, (w.post.platform, w.post.post_id)
            parent = self.decided.get((post.platform, post.reply_to or ""), w.known)
            d = decide(post, self.programme, parent)
            d = self.adjust(post, d) if self.adjust else d
            if self.remember is None or self.remember(key):
                self.decided[key] = d
            done[key] = (post, d)
            if key in self.waiting:
                stack.extend(reversed(_in_time(self.waiting.pop(key))))
        return done


def _in_time(posts: Iterable[_Waiting[P]]) -> list[_Waiting[P]]:
    """In decide_all's order: time, platform, id (then the order added)."""
    return sorted(
        posts, key=lambda w: (as_utc(w.post.created_at), w.post.platform, w.post.post_id, w.order)
    )


class _Waiting(NamedTuple, Generic[P]):
    order: int  # when it was added
    post: P
    known: Decision | None  # its parent's decision from an earlier batch


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
    known = known or {}
    decider: Decider[TagInput] = Decider(programme, adjust)
    decided: list[tuple[TagInput, Decision]] = []
    for post in ordered:
        parent = (post.platform, post.reply_to or "")
        decided += decider.add(post, parent in batch, known.get(parent))
    return {(p.platform, p.post_id): d for p, d in decided + decider.finish()}


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
