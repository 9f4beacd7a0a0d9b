"""Safeguarding (docs/privacy.md): personal identifiers and personal health disclosures in post text.

The public names: `find_identifiers` and `redact` (here), `disclosure` and `role_from_profile`
(`aggregator.safeguarding_disclosures`), and `evaluate` against a labelled set. Pure, and linear in
the text's length: every pattern is flat (no repetition inside repetition) and every look around a
match is bounded, so hostile text cannot make a scan slow. `evaluate` is the one function that reads
a file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from aggregator import safeguarding_terms as L
from aggregator.errors import UsageError
from aggregator.safeguarding_disclosures import Disclosure, Role, disclosure, role_from_profile

__all__ = [
    "DEFAULT_ALLOWLIST",
    "KINDS",
    "PLACEHOLDERS",
    "Allowlist",
    "Disclosure",
    "Found",
    "IdentifierScrubber",
    "LabelledSetError",
    "Role",
    "SafeguardingEvaluation",
    "Score",
    "disclosure",
    "evaluate",
    "evaluate_records",
    "find_identifiers",
    "is_valid_nhs_number",
    "redact",
    "role_from_profile",
    "scrubber_for",
]

KINDS = ("nhs_number", "phone", "email", "address")
PLACEHOLDERS = {
    "nhs_number": "[NHS number removed]",
    "phone": "[phone removed]",
    "email": "[e-mail removed]",
    "address": "[address removed]",
}

# ---- identifiers ---------------------------------------------------------------------------------

_SEP = r"[ \-\u00a0]"
# Ten digits, alone or grouped 3-3-4; not part of a longer number.
NHS_NUMBER = re.compile(rf"(?<![\d+])(?:\d{{10}}|\d{{3}}{_SEP}\d{{3}}{_SEP}\d{{4}})(?!\d)")
# +44, 0044 or 0, then ten more digits with a space, hyphen, dot or closing bracket between any two.
# Written out digit by digit, so nothing repeats inside a repetition.
_GAP = r"\)?[ \-.\u00a0]?"
PHONE = re.compile(
    r"(?<![\w+@])(?:(?:\+|00)44[ \u00a0]?(?:\(0\))?[ \u00a0]?\(?|\(?0)[1-9]"
    + (_GAP + r"\d") * 9
    + r"(?!\d)"
)
# Anchored at the start of the local part (the look-behind), so each run of text is read once.
EMAIL = re.compile(r"(?<![\w.%+\-@])[\w.%+\-]+@[A-Za-z0-9.\-]+")
POSTCODE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{1,2}\d[A-Za-z\d]? ?\d[A-Za-z]{2}(?![A-Za-z0-9])")
ADDRESS_WORD = re.compile(r"[\w'’\-]+\.?|,")
HOUSE_NUMBER = re.compile(r"\d{1,4}[A-Za-z]?")
ADDRESS_STOP = re.compile(r"[.!?;:()\[\]\"“”\n]")
ADDRESS_REACH = 120  # characters before a postcode where its street address may start
STREET_SUFFIXES = L.words(
    "road rd street st avenue ave lane ln close drive dr way crescent cres grove place pl terrace "
    "tce gardens gdns court ct walk mews park hill row square sq view rise green parade vale wharf "
    "yard gate fold croft meadow meadows chase approach boulevard quay wynd brow bank end side "
    "field fields common hollow heights cottages villas garth lea mount"
)
ABBREVIATED_SUFFIXES = L.words("rd st ave ln dr cres pl tce gdns ct sq")  # "Station Rd. Salisbury"
FLAT_WORDS = frozenset({"flat", "apartment", "apt", "unit", "room"})
# Organisations' mailboxes (compared without . - _): a role, not a person.
ROLE_MAILBOXES = L.words(
    "enquiries enquiry info information contact contactus hello admin office reception press media "
    "communications comms news feedback complaints pals involvement getinvolved engagement events "
    "membership members volunteering volunteers support help helpdesk team general mail post "
    "webmaster noreply donotreply bookings booking register registration patientexperience "
    "experience participation partnerships accessibility"
)


class Found(NamedTuple):
    """A personal identifier: its kind and where it is in the text (text[start:end])."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Allowlist:
    """An organisation's published contact details: not personal, so never redacted.

    phone_prefixes: national numbers starting so are organisations' lines (03 and 08 non-geographic
    and freephone numbers, 09 premium rate). mailboxes: role mailboxes on any domain (`enquiries@`),
    compared without dots, hyphens and underscores; mailbox_prefixes: (prefix, domain) pairs for role
    addresses on a shared domain (`england.copro16@nhs.net`). domains: every address on them or
    their subdomains. postcodes: an organisation's or venue's postcodes, whose address is published.
    """

    phone_prefixes: tuple[str, ...] = ("03", "08", "09")
    mailboxes: frozenset[str] = ROLE_MAILBOXES
    mailbox_prefixes: tuple[tuple[str, str], ...] = (("england.", "nhs.net"),)
    domains: tuple[str, ...] = ()
    postcodes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "domains", tuple(d.lower().lstrip("@.") for d in self.domains))
        object.__setattr__(self, "postcodes", tuple(_postcode_key(p) for p in self.postcodes))

    def with_organisation(
        self, domains: Iterable[str] = (), postcodes: Iterable[str] = ()
    ) -> Allowlist:
        """This allowlist with an organisation's own domains and postcodes added."""
        return replace(
            self, domains=(*self.domains, *domains), postcodes=(*self.postcodes, *postcodes)
        )

    def email_is_organisation(self, local: str, domain: str) -> bool:
        local, domain = local.lower(), domain.lower()
        if any(domain == d or domain.endswith("." + d) for d in self.domains):
            return True
        if any(local.startswith(p) and domain == d for p, d in self.mailbox_prefixes):
            return True
        return re.sub(r"[._\-]", "", local) in self.mailboxes


DEFAULT_ALLOWLIST = Allowlist()


def _postcode_key(code: str) -> str:
    return code.replace(" ", "").upper()


def is_valid_nhs_number(value: str) -> bool:
    """Ten digits (separators ignored) whose last is the modulus-11 check digit of the first nine."""
    digits = [int(c) for c in value if c.isdecimal()]
    if len(digits) != 10:
        return False
    total = sum(d * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return check != 10 and check == digits[9]


class _Candidate(NamedTuple):
    start: int
    end: int
    kind: str
    personal: bool  # False: an organisation's line, kept only so nothing inside it is read again


def _nhs_numbers(text: str) -> Iterator[_Candidate]:
    for m in NHS_NUMBER.finditer(text):
        isbn = "isbn" in text[max(0, m.start() - 8) : m.start()].lower()  # ISBN-10s pass the check
        if not isbn and is_valid_nhs_number(m.group()):
            yield _Candidate(m.start(), m.end(), "nhs_number", True)


def _phones(text: str, allow: Allowlist) -> Iterator[_Candidate]:
    for m in PHONE.finditer(text):
        national = "0" + "".join(c for c in m.group() if c.isdecimal())[-10:]
        yield _Candidate(m.start(), m.end(), "phone", not national.startswith(allow.phone_prefixes))


def _emails(text: str, allow: Allowlist) -> Iterator[_Candidate]:
    for m in EMAIL.finditer(text):
        local, _, domain = m.group().partition("@")
        start = m.start() + len(local) - len(local.lstrip("."))
        domain = domain.rstrip(".-")
        labels = domain.split(".")
        if not local.strip(".") or len(labels) < 2 or not all(labels):
            continue
        if not (labels[-1].isalpha() and len(labels[-1]) >= 2):
            continue
        end = m.start() + len(local) + 1 + len(domain)
        yield _Candidate(start, end, "email", not allow.email_is_organisation(local, domain))


def _address_start(text: str, end: int) -> int | None:
    """Where the street address ending at a postcode (at `end`) starts: its house number or flat."""
    toks = list(ADDRESS_WORD.finditer(text, max(0, end - ADDRESS_REACH), end))
    for s in range(len(toks) - 1, max(-1, len(toks) - 7), -1):
        word = toks[s].group().lower()
        if word.rstrip(".") not in STREET_SUFFIXES:
            continue
        full_stop = (
            word.endswith(".") and word[:-1] not in ABBREVIATED_SUFFIXES
        )  # "Road." ends a sentence
        if full_stop or ADDRESS_STOP.search(text, toks[s].end(), end):
            return None
        for n in range(1, 4):  # the street's name: one to three words
            names, number = toks[s - n : s], s - n - 1
            if number < 0 or any(t.group() == "," or t.group()[0].isdecimal() for t in names):
                break
            if _is_house_number(toks[number].group()):
                if ADDRESS_STOP.search(text, toks[number].start(), toks[s].start()):
                    return None
                return _flat_start(toks, number)
    return None


def _is_house_number(word: str) -> bool:
    return all(HOUSE_NUMBER.fullmatch(part) for part in word.rstrip(",").split("-"))


def _flat_start(toks: list[re.Match[str]], number: int) -> int:
    """'Flat 2, 14 Acacia Road': the address starts at 'Flat'."""
    if (
        number >= 3
        and toks[number - 1].group() == ","
        and toks[number - 2].group().isdecimal()
        and toks[number - 3].group().lower() in FLAT_WORDS
    ):
        return toks[number - 3].start()
    return toks[number].start()


def _addresses(text: str, allow: Allowlist) -> Iterator[_Candidate]:
    for m in POSTCODE.finditer(text):
        start = _address_start(text, m.start())
        if start is not None:
            personal = _postcode_key(m.group()) not in allow.postcodes
            yield _Candidate(start, m.end(), "address", personal)


def find_identifiers(text: str, allowlist: Allowlist = DEFAULT_ALLOWLIST) -> list[Found]:
    """Every personal identifier in `text`, in order; where two overlap, the longer is kept."""
    found = [
        *_nhs_numbers(text),
        *_phones(text, allowlist),
        *_emails(text, allowlist),
        *_addresses(text, allowlist),
    ]
    found.sort(key=lambda c: (c.start, c.start - c.end))
    kept: list[_Candidate] = []
    for c in found:
        if kept and c.start < kept[-1].end:
            if c.end - c.start > kept[-1].end - kept[-1].start:
                kept[-1] = c
            continue
        kept.append(c)
    return [Found(c.kind, c.start, c.end) for c in kept if c.personal]


def redact(
    text: str, allowlist: Allowlist = DEFAULT_ALLOWLIST, kinds: Iterable[str] = KINDS
) -> tuple[str, Counter[str]]:
    """`text` with each personal identifier of `kinds` replaced by its placeholder, and how many
    of each kind were replaced."""
    wanted = set(kinds)
    out: list[str] = []
    counts: Counter[str] = Counter()
    last = 0
    for f in find_identifiers(text, allowlist):
        if f.kind in wanted:
            out += [text[last : f.start], PLACEHOLDERS[f.kind]]
            counts[f.kind] += 1
            last = f.end
    return "".join([*out, text[last:]]), counts


# Keys of a platform's payload that hold accounts, ids and addresses, not what someone wrote.
NOT_WRITTEN = frozenset(
    {"acct", "username", "handle", "screen_name", "did", "author", "mentions", "id", "uri", "url",
     "platform", "in_reply_to_id", "in_reply_to_account_id", "reply_to", "repost_of", "quote_of"}
)  # fmt: skip


class IdentifierScrubber:
    """Redacts personal identifiers wherever post content travels (a post's text, its HTML, alt
    text, a raw payload), counting what it removed by kind for the manifest and "About this data"."""

    def __init__(self, allowlist: Allowlist = DEFAULT_ALLOWLIST) -> None:
        self.allowlist = allowlist
        self.counts: Counter[str] = Counter()

    def text(self, value: str) -> str:
        clean, found = redact(value, self.allowlist)
        self.counts.update(found)
        return clean

    def json(self, value: object) -> object:
        """Every string in a JSON-like value redacted, except under the keys that name accounts
        and posts (`NOT_WRITTEN`): a fediverse handle (alice@mastodon.social) is written like an
        e-mail address but is the account itself, kept (or pseudonymised) as such."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: v if k in NOT_WRITTEN else self.json(v) for k, v in value.items()}
        return value


def scrubber_for(privacy: object) -> IdentifierScrubber | None:
    """The scrubber a `[privacy]` config asks for (its organisation's domains and postcodes
    allowed), or None when `redact_identifiers = false`."""
    if not getattr(privacy, "redact_identifiers", True):
        return None
    allowlist = DEFAULT_ALLOWLIST.with_organisation(
        domains=getattr(privacy, "organisation_domains", ()),
        postcodes=getattr(privacy, "organisation_postcodes", ()),
    )
    return IdentifierScrubber(allowlist)


# ---- evaluation ----------------------------------------------------------------------------------

TARGETS = (
    ("valid NHS numbers recall", 1.0),
    ("identifiers precision", 0.99),
    ("disclosures recall", 0.9),
    ("disclosures precision", 0.8),
)


class LabelledSetError(UsageError):
    """A labelled set that cannot be read (a usage error: exit 2): the message names the file, the
    line and what to fix."""


@dataclass(frozen=True)
class Score:
    """Counts behind precision and recall: labelled, found, and found that were labelled."""

    expected: int = 0
    found: int = 0
    correct: int = 0

    @property
    def precision(self) -> float | None:
        return self.correct / self.found if self.found else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.expected if self.expected else None

    def __add__(self, other: Score) -> Score:
        return Score(
            self.expected + other.expected, self.found + other.found, self.correct + other.correct
        )


@dataclass(frozen=True)
class SafeguardingEvaluation:
    """The detector against a labelled set: identifiers span by span (exact substring and kind),
    disclosures post by post. `misses` name posts and kinds only, never their text."""

    name: str
    posts: int
    identifiers: dict[str, Score]
    disclosures: Score
    kinds_right: int  # disclosures found with the labelled kind
    misses: tuple[str, ...] = ()

    @property
    def all_identifiers(self) -> Score:
        return sum(self.identifiers.values(), Score())

    def measures(self) -> dict[str, float | None]:
        """The four measures the targets are set on (None where nothing was labelled or found)."""
        return {
            "valid NHS numbers recall": self.identifiers["nhs_number"].recall,
            "identifiers precision": self.all_identifiers.precision,
            "disclosures recall": self.disclosures.recall,
            "disclosures precision": self.disclosures.precision,
        }

    def failures(self) -> list[str]:
        """The targets (the issue's: NHS recall 1.0, identifier precision 0.99, disclosure recall
        0.9 and precision 0.8) this evaluation misses, one line each; empty when all are met."""
        lines = []
        for name, target in TARGETS:
            value = self.measures()[name]
            if value is not None and value < target:
                lines.append(f"{name} {_fmt(value)} is below the target {target:.2f}")
        return lines

    def format_lines(self) -> list[str]:
        """For people: precision and recall per identifier kind and for disclosures, then the
        targets missed (or that all are met)."""
        lines = [f"{self.name}: {self.posts} posts"]
        rows = [*self.identifiers.items(), ("all identifiers", self.all_identifiers)]
        rows.append(("disclosures", self.disclosures))
        for label, s in rows:
            lines.append(
                f"  {label:<16} precision {_fmt(s.precision)}  recall {_fmt(s.recall)}"
                f"  ({s.expected} labelled, {s.found} found, {s.correct} right)"
            )
        if self.disclosures.correct:
            lines.append(
                f"  disclosure kind right for {self.kinds_right} of {self.disclosures.correct} found"
            )
        lines += [f"  target missed: {f}" for f in self.failures()] or ["  all targets met"]
        return lines


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def evaluate_records(
    records: Iterable[dict], name: str = "labelled set", allowlist: Allowlist = DEFAULT_ALLOWLIST
) -> SafeguardingEvaluation:
    """Score the detector on labelled records (the shape of tests/fixtures/safeguarding/SOURCES.md)."""
    ident = {kind: Score() for kind in KINDS}
    disc, kinds_right, posts = Score(), 0, 0
    misses: list[str] = []
    for r in records:
        posts += 1
        text = r["text"]
        expected = Counter((i["kind"], i["text"]) for i in r["identifiers"])
        got = Counter((f.kind, text[f.start : f.end]) for f in find_identifiers(text, allowlist))
        right = expected & got
        for kind in KINDS:
            ident[kind] += Score(
                sum(n for (k, _), n in expected.items() if k == kind),
                sum(n for (k, _), n in got.items() if k == kind),
                sum(n for (k, _), n in right.items() if k == kind),
            )
        misses += [f"{r['id']}: missed {k}" for k, _ in expected - got]
        misses += [f"{r['id']}: wrongly found {k}" for k, _ in got - expected]
        found = disclosure(text, role_from_profile(r.get("bio")))
        disc += Score(
            int(r["disclosure"]), int(found is not None), int(bool(found) and r["disclosure"])
        )
        if found and r["disclosure"]:
            kinds_right += found.kind == r.get("kind")
        elif found or r["disclosure"]:
            misses.append(f"{r['id']}: {'wrongly flagged' if found else 'missed'} disclosure")
    return SafeguardingEvaluation(name, posts, ident, disc, kinds_right, tuple(misses))


def evaluate(path: str | Path, allowlist: Allowlist = DEFAULT_ALLOWLIST) -> SafeguardingEvaluation:
    """Score the detector on a labelled JSONL file; LabelledSetError names a line that cannot be read."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LabelledSetError(f"cannot read the labelled set {path}: {e}") from None
    records = [_record(path, n, line) for n, line in enumerate(lines, 1) if line.strip()]
    return evaluate_records(records, path.name, allowlist)


def _record(path: Path, n: int, line: str) -> dict:
    where = f"{path} line {n}"
    try:
        r = json.loads(line)
    except json.JSONDecodeError as e:
        raise LabelledSetError(
            f"{where} is not JSON ({e.msg}); write one object per line"
        ) from None
    if not isinstance(r, dict) or not isinstance(r.get("text"), str):
        raise LabelledSetError(f'{where}: each line must be an object with a "text" string')
    if not isinstance(r.get("disclosure"), bool):
        raise LabelledSetError(f'{where}: "disclosure" must be true or false')
    found = r.get("identifiers")
    if not isinstance(found, list) or not all(
        isinstance(i, dict) and i.get("kind") in KINDS and isinstance(i.get("text"), str)
        for i in found
    ):
        raise LabelledSetError(
            f'{where}: "identifiers" must be a list of {{"kind", "text"}} with kind one of {", ".join(KINDS)}'
        )
    r.setdefault("id", f"line {n}")
    return r
