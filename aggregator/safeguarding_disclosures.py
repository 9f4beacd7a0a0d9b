"""Personal health disclosures in post text, and account roles from profiles (docs/privacy.md).

Pure, and linear in the text's length. The rules: a health term from the lexicon in
`aggregator.safeguarding_terms`, tied to the poster by an anchor ("I", "my", "my son", "as someone")
and the bridge words between them; services, topics and other people's reported words are not.
`aggregator.safeguarding` re-exports the public names.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple

from aggregator import safeguarding_terms as L

__all__ = ["Disclosure", "Role", "disclosure", "role_from_profile"]

Role = Literal["organisation", "clinician", "patient_carer"]

# ---- personal health disclosures -----------------------------------------------------------------

WORD = re.compile(r"[^\W_]+")
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)  # a link's words are not the poster's
CLAUSE_BREAK = re.compile(r"[.!?;:\n\"“”|]")
SENTENCE_BREAK = re.compile(r"[.!?\n]")
QUOTE = re.compile(r"[\"“”]|(?<!\w)['‘](?=\w)|(?<=[\w.!?,])['’](?!\w)")
# "… – @speaker", "… says @speaker", "… – Firstname Surname." after the words it attributes.
ATTRIBUTION = re.compile(
    r"(?:[–—~-]|\b(?:says|said))[ \u00a0]?@\w"
    r"|[–—-][ \u00a0]?[A-Z][a-z]+ [A-Z][\w'’-]*(?=[ \u00a0]?(?:[,.!#]|$))"
)
MAX_BRIDGE = 8  # words between the poster and the health term
MAX_MY_BRIDGE = 4  # words between "my" and the term: "my last round of chemo"
DECLINE_REACH = 5  # words after a weak cue where "… has been awful" makes it a disclosure
OBJECT_REACH = 3  # words after a term where "saved my life" may follow


def _phrases(*groups: tuple[str, str]) -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """First word -> (phrase, kind), longest phrases first."""
    out: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    seen: set[tuple[str, ...]] = set()
    for kind, terms in groups:
        for term in terms.replace("\n", " ").split(","):
            words = tuple(WORD.findall(term.lower()))
            if words and words not in seen:
                seen.add(words)
                out.setdefault(words[0], []).append((words, kind))
    for entries in out.values():
        entries.sort(key=lambda e: -len(e[0]))
    return out


PHRASES = _phrases(
    (L.CONDITION, L.CONDITIONS),
    (L.MENTAL_HEALTH, L.MENTAL),
    (L.TREATMENT, L.TREATMENTS),
    (L.MEDICATION, L.MEDICATIONS),
)
WEAK_PHRASES = {words: kind for words, kind in L.WEAK.items()}


@dataclass(frozen=True)
class Disclosure:
    """A personal health disclosure: its kind, the words that make it one (`cue`, text[start:end]),
    and why, in a few words."""

    kind: str
    cue: str
    reason: str
    start: int
    end: int


class _Term(NamedTuple):
    start: int  # token indexes, end exclusive
    end: int
    kind: str
    weak: bool


class _Tokens:
    """A post's words, lower-cased, with where clauses and sentences break and what is quoted."""

    def __init__(self, text: str) -> None:
        self.text = text
        links = [m.span() for m in URL.finditer(text)]
        self.toks = [t for t in WORD.finditer(text) if not _inside(links, t.start())]
        self.low = [t.group().lower() for t in self.toks]
        self.clause = [0] * len(self.toks)  # index of the first token of token i's clause
        self.tag = [t.start() > 0 and text[t.start() - 1] in "#@" for t in self.toks]
        prev_end = 0
        for i, t in enumerate(self.toks):
            breaks = i == 0 or CLAUSE_BREAK.search(text, prev_end, t.start())
            self.clause[i] = i if breaks else self.clause[i - 1]
            prev_end = t.end()
        self.sentence_breaks = [m.start() for m in SENTENCE_BREAK.finditer(text)]
        self.quoted = _quoted(text)
        self.attributions = [m.start() for m in ATTRIBUTION.finditer(text)]
        self.reported = self._reporting()
        self.terms: dict[int, _Term | None] = {}  # the term at each token, once looked up

    def __len__(self) -> int:
        return len(self.toks)

    def term(self, i: int) -> _Term | None:
        if i not in self.terms:
            self.terms[i] = _term_at(self, i)
        return self.terms[i]

    def word(self, i: int) -> str:
        return self.toks[i].group()

    def joined(self, i: int, j: int) -> bool:
        """No clause break between tokens i and j (i < j)."""
        return self.clause[j] <= i

    def clause_start(self, i: int) -> bool:
        """Token i opens its clause, hashtags and handles before it aside."""
        first = self.clause[i]
        return all(self.tag[k] for k in range(first, i)) if i - first < 4 else False

    def sentence(self, offset: int) -> int:
        return bisect.bisect_right(self.sentence_breaks, offset)

    def _reporting(self) -> list[bool]:
        """Token i follows a reporting verb with a speaker ('@x says', 'Priya explains', 'she said')
        earlier in its sentence."""
        out = [False] * len(self.toks)
        on, sentence = False, -1
        for i, t in enumerate(self.toks):
            s = self.sentence(t.start())
            if s != sentence:
                on, sentence = False, s
            out[i] = on
            if self.low[i] in L.REPORTING and i > 0 and self._speaker(i - 1):
                on = True
        return out

    def _speaker(self, i: int) -> bool:
        word = self.word(i)
        if i > 0 and self.low[i - 1] in L.POSSESSIVES:  # "my GP says I'm diabetic" is mine
            return False
        return (
            self.tag[i]
            or self.low[i] in L.THIRD_PARTY
            or (word[0].isupper() and word.lower() != "i")
        )

    def in_quotes(self, offset: int) -> bool:
        return _inside(self.quoted, offset)

    def attributed(self, i: int, end: int) -> bool:
        """The clause of token i is someone else's words: after 'Firstname Surname:' or '@x:',
        after '@x says', or followed by '– @x' in its sentence."""
        if self.reported[i]:
            return True
        k = bisect.bisect_left(self.attributions, end)
        if k < len(self.attributions) and self.sentence(self.attributions[k]) == self.sentence(end):
            return True
        first = self.clause[i]
        if (
            first == 0
            or ":" not in self.text[self.toks[first - 1].end() : self.toks[first].start()]
        ):
            return False
        before = range(self.clause[first - 1], first)
        if len(before) > 5 or self.low[before[0]] == "rt":  # a repost is the poster's own choice
            return False
        handles = any(self.tag[k] for k in before)
        names = len(before) >= 2 and all(self.word(k)[0].isupper() for k in before)
        return handles or names


def _inside(spans: list[tuple[int, int]], offset: int) -> bool:
    """Whether offset is in one of spans (sorted, not overlapping)."""
    k = bisect.bisect_right(spans, (offset, offset)) - 1
    return k >= 0 and spans[k][0] <= offset < spans[k][1]


def _quoted(text: str) -> list[tuple[int, int]]:
    """Spans inside paired quotation marks, in order, quotes within quotes merged."""
    spans: list[tuple[int, int]] = []
    opened: dict[str, int] = {}
    for m in QUOTE.finditer(text):
        mark = m.group()
        family = '"' if mark in '"“”' else "'"
        if family in opened and mark not in "“‘":
            spans.append((opened.pop(family), m.end()))
        elif mark not in "”’" and family not in opened:
            opened[family] = m.start()
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _by_ending(word: str) -> str | None:
    if len(word) < L.MIN_STEM_WORD or word in L.NOT_BY_ENDING:
        return None
    return next((kind for kind, ends in L.ENDINGS.items() if word.endswith(ends)), None)


def _term_at(t: _Tokens, i: int) -> _Term | None:
    """The health term starting at token i, if any: listed, by its ending, or named by what it is."""
    low = t.low
    for words, kind in PHRASES.get(low[i], ()):
        j = i + len(words)
        if tuple(low[i:j]) == words and t.joined(i, j - 1):
            if j < len(t) and low[j] in L.HEADS and t.joined(i, j):  # "sickle cell disease"
                j += 1
            return _Term(i, j, kind, False)
    if t.word(i) in L.CASED:
        return _Term(i, i + 1, L.CASED[t.word(i)], False)
    ending = _by_ending(low[i])
    if ending:
        return _Term(i, i + 1, ending, False)
    head = _head_at(t, i)
    if head:
        return head
    for n in (2, 1):
        weak = WEAK_PHRASES.get(tuple(low[i : i + n])) if i + n <= len(t) else None
        if weak and t.joined(i, i + n - 1):
            return _Term(i, i + n, weak, True)
    return None


def _head_at(t: _Tokens, i: int) -> _Term | None:
    """'Ehlers-Danlos syndrome', 'a rare genetic condition', 'Huntington's disease'."""
    j = i
    if t.word(i)[0].isupper() and i + 2 < len(t) and t.low[i + 1] == "s" and t.joined(i, i + 2):
        j = i + 2  # an eponym: "Addison's disease"
    else:
        while j < len(t) and j - i < 2 and t.word(j)[0].isupper() and t.joined(i, j):
            j += 1  # "Ehlers-Danlos syndrome", "Lyme disease"
    while j < len(t) and j - i < 4 and t.low[j] in L.HEAD_MODIFIERS and t.joined(i, j):
        j += 1
    if j < len(t) and t.low[j] in L.HEADS and t.joined(i, j):
        bare = j == i and t.low[j] == "condition"  # "on condition that…"
        return _Term(i, j + 1, L.CONDITION, bare)
    return None


def _usable(t: _Tokens, term: _Term, anchor: str, passive_ok: bool) -> bool:
    """Whether a term found after an anchor ("self", "my" or "family") speaks of a person's health
    rather than of a service or a topic."""
    first = t.low[term.start]
    nxt = t.low[term.end] if term.end < len(t) and t.joined(term.start, term.end) else ""
    services = L.SERVICE_NOUNS if anchor == "self" else L.MY_SERVICE_NOUNS
    if nxt in services or nxt in L.NOT_BEFORE.get(first, ()):
        return False
    if first in L.MY_ONLY and anchor == "self":
        return False
    if first in L.NOT_AFTER_MY and anchor == "my":
        return False
    if first in L.PASSIVE_ONLY:
        before = t.low[term.start - 1] if term.start > 0 else ""
        return passive_ok or before in L.PASSIVE_AUX
    return True


class _Cue(NamedTuple):
    start: int  # token indexes: the anchor, the term, the end of both
    term: int
    term_end: int
    end: int
    kind: str  # the disclosure's kind: the term's, or "family"
    term_kind: str
    weak: bool
    who: str  # whose health: "first person", "family ('my son')"…


def _scan(t: _Tokens, anchor: int, j: int, who: str, mine: bool, weak: bool = False) -> _Cue | None:
    """From token j, bridge words up to a health term; None at anything else."""
    family = who.startswith("family")
    bridge, reach = (L.MY_BRIDGE, MAX_MY_BRIDGE) if mine else (L.BRIDGE, MAX_BRIDGE)
    for k in range(j, min(len(t), j + reach)):
        if not t.joined(anchor, k):
            return None
        term = t.term(k)
        if term:
            role = "family" if family else "my" if mine else "self"
            if not _usable(t, term, role, passive_ok=k == anchor):
                return None
            kind = L.FAMILY if family else term.kind
            weak = weak or (term.weak and not _declining(t, term.end))
            return _Cue(anchor, k, term.end, term.end, kind, term.kind, weak, who)
        if t.low[k] in L.KIN and not mine:  # "I have a son with autism"
            who = f"family ('{t.word(k)}')"
            family = True
        elif not (t.low[k] in bridge or _number(t.low[k]) or _adjective(t, k)):
            return None
    return None


def _number(word: str) -> bool:
    return word.isdecimal() and len(word) <= 4


def _adjective(t: _Tokens, k: int) -> bool:
    """A medical-looking adjective right before a term: 'vascular dementia'."""
    word = t.low[k]
    return (
        len(word) >= 5
        and word.endswith(L.ADJECTIVE_ENDINGS)
        and k + 1 < len(t)
        and t.joined(k, k + 1)
        and t.term(k + 1) is not None
    )


def _declining(t: _Tokens, k: int) -> bool:
    """'… has taken a battering', '… is awful': a weak cue said to be going badly."""
    return any(
        t.low[j] in L.DECLINE and t.joined(k - 1, j)
        for j in range(k, min(len(t), k + DECLINE_REACH))
    )


def _anchored(t: _Tokens, i: int) -> _Cue | None:
    """A disclosure whose words start at token i: 'I …', 'my …', 'my son …', 'as someone …'."""
    low = t.low[i]
    nxt = t.low[i + 1] if i + 1 < len(t) and t.joined(i, i + 1) else ""
    if low in L.SELF or (low == "me" and t.word(i) != "ME"):
        return _scan(t, i, i + 1, "first person", mine=False)
    if low == "as" and nxt in L.AS_NEXT:
        return _scan(t, i, i + 1, "first person", mine=False)
    if low in L.POSSESSIVES:
        k = i + 1
        while k < len(t) and k - i <= 2 and t.low[k] in L.KIN_MODIFIERS and t.low[k] not in L.KIN:
            k += 1
        if k < len(t) and t.low[k] in L.KIN and t.joined(i, k):
            who = f"family ('{t.text[t.toks[i].start() : t.toks[k].end()]}')"
            return _scan(t, i, k + 1, who, mine=False)
        if low == "my":
            return _scan(t, i, i + 1, "first person ('my')", mine=True)
        return None
    if t.clause_start(i):
        if low in L.IMPLICIT or low in L.IMPLICIT_WEAK:  # "Diagnosed with MS at 30."
            weak = low in L.IMPLICIT_WEAK
            return _scan(t, i, i, "first person (implied)", mine=False, weak=weak)
        if low in L.KIN:  # "Mum was diagnosed…": a carer's way of writing
            return _scan(t, i, i + 1, f"family ('{t.word(i)}')", mine=False, weak=True)
    return None


def _object(t: _Tokens, i: int) -> _Cue | None:
    """A term followed by the poster as its object: 'sertraline saved my life', 'having MS myself'."""
    term = t.term(i)
    if term is None or term.weak or not _usable(t, term, "self", passive_ok=False):
        return None
    for k in range(term.end, min(len(t), term.end + OBJECT_REACH)):
        if not t.joined(i, k):
            return None
        if t.low[k] == "myself":
            return _Cue(
                i, i, term.end, k + 1, term.kind, term.kind, False, "first person ('myself')"
            )
        if t.low[k] in L.OBJECT_VERBS and k + 1 < len(t) and t.joined(i, k + 1):
            obj = t.low[k + 1]
            after = t.low[k + 2] if k + 2 < len(t) and t.joined(i, k + 2) else ""
            if obj == "me" or (obj == "my" and after == "life"):
                end = k + 2 if obj == "me" else k + 3
                return _Cue(
                    i, i, term.end, end, term.kind, term.kind, False, f"first person ('{obj}')"
                )
            if obj in L.POSSESSIVES and after in L.KIN:
                return _Cue(
                    i, i, term.end, k + 3, L.FAMILY, term.kind, False, f"family ('{obj} {after}')"
                )
    return None


def _cues(t: _Tokens) -> Iterator[_Cue]:
    for i in range(len(t)):
        for cue in (_anchored(t, i), _object(t, i)):
            if cue is None:
                continue
            start, end = t.toks[cue.start].start(), t.toks[cue.end - 1].end()
            if not (t.in_quotes(start) or t.attributed(cue.start, end)):
                yield cue


def disclosure(text: str, role: Role | None = None) -> Disclosure | None:
    """The first personal health disclosure in `text`, or None.

    Weak cues ("my mental health", "depressed", "Mum was diagnosed…") count only for an account whose
    profile says patient or carer (`role="patient_carer"`): their posts are read more carefully.
    """
    t = _Tokens(text)
    weak: _Cue | None = None
    for cue in _cues(t):
        if not cue.weak:
            return _disclosure(t, cue)
        weak = weak or cue
    return _disclosure(t, weak) if weak and role == "patient_carer" else None


def _disclosure(t: _Tokens, cue: _Cue) -> Disclosure:
    start, end = t.toks[cue.start].start(), t.toks[cue.end - 1].end()
    term = t.text[t.toks[cue.term].start() : t.toks[cue.term_end - 1].end()]
    reason = f"{cue.who} + {cue.term_kind.replace('_', ' ')} term '{term}'"
    if cue.weak:
        reason += " (a weak cue: counted for patient and carer accounts)"
    return Disclosure(cue.kind, t.text[start:end], reason, start, end)


# ---- roles ---------------------------------------------------------------------------------------

PATIENT_CARER_HINTS = re.compile(
    r"\b(?:carer|caring for my|parent carer|(?:mum|mother|dad|father|parent) (?:of|to)"
    r"|patient (?:leader|advocate|partner|representative|rep|voice|activist|innovator)"
    r"|e-?patient|experts? by experience|lived experience|living with|survivor|service user"
    r"|diagnosed with|transplant recipient|spoonie|actuallyautistic|chronic illness"
    r"|chronically ill)\b",
    re.IGNORECASE,
)
ORGANISATION_HINTS = re.compile(
    r"\b(?:official (?:account|twitter|page|feed)|account (?:of|for)|registered charity"
    r"|charity (?:no|number)|we are|we're|we support|we provide|we work|we help|we listen"
    r"|tweets? (?:by|from) the|follow us|our team|monitored)\b",
    re.IGNORECASE,
)
CLINICIAN_HINTS = re.compile(
    r"\b(?:general practitioner|doctor|nurse|midwife|paramedic|consultant|registrar|physician"
    r"|surgeon|psychiatrist|psychologist|paediatrician|pediatrician|pharmacist|physio"
    r"|physiotherapist|therapist|clinician|clinical lead|medical director|matron|health visitor"
    r"|dietitian|dietician|radiographer|anaesthetist|oncologist|cardiologist|neurologist"
    r"|healthcare assistant)\b",
    re.IGNORECASE,
)
CLINICIAN_LETTERS = re.compile(r"\b(?:GP|OT|RN|RGN|RMN|AHP|HCA|FY1|FY2|MRCGP|FRCP|MRCP|MBBS|Dr)\b")
ORGANISATION_NAMES = re.compile(
    r"\b(?:nhs (?:foundation )?trust|ccg|clinical commissioning group|healthwatch|council|charity"
    r"|cic|ltd|limited|network|alliance|partnership|federation|association|society|hospice)\b",
    re.IGNORECASE,
)


def role_from_profile(bio: str | None) -> Role | None:
    """What an account's profile says it is, read to protect, never to expose: a patient or carer
    first (their posts are read more carefully), then an organisation, then a clinician."""
    if not bio:
        return None
    if PATIENT_CARER_HINTS.search(bio):
        return "patient_carer"
    if ORGANISATION_HINTS.search(bio):
        return "organisation"
    if CLINICIAN_HINTS.search(bio) or CLINICIAN_LETTERS.search(bio):
        return "clinician"
    if ORGANISATION_NAMES.search(bio):
        return "organisation"
    return None
