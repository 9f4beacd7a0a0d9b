"""The organisers' review page (`aggregator report --review`): every candidate the story could show,
part by part, with why it is shown or not and the curation entry that pins, excludes, moves or
mutes it; flagged disclosures with their kind and reason; muted, spam and recognised accounts.

Never published: it may say what the story leaves unsaid (a flagged disclosure, an account's
role), so it is written beside the config, not into the report's folder (pipeline.report).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from aggregator.curation import GENERAL
from aggregator.scrubber import account_key
from aggregator.settings import Config
from reports.model import Candidate, Part, PostView, Review, ReviewPart
from reports.story import Told

__all__ = ["build_review", "entry"]

ROLE_NAMES = {"patient_carer": "patient or carer (profile)", "clinician": "clinician (profile)",
              "organisation": "organisation (profile)"}  # fmt: skip
KINDS = (  # (kind on the page, the scan's list, what the story shows of the part)
    ("highlight", "best", "highlights"),
    ("question", "questions", "questions"),
    ("pledge", "actions", "actions"),
    ("technical", "technical", "technical"),
)
QUOTED = re.compile(r"'([^']+)'|\('([^)]+)'\)")


def entry(table: str, **keys: str) -> str:
    """A curation file entry as it is pasted: the table's header, then its keys as TOML strings."""
    body = "\n".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in keys.items())
    return f"[[{table}]]\n{body}"


def _lines(post: PostView, session: str, shown: bool) -> dict[str, str]:
    """The entries that change what the story does with the post: pin or exclude it, move it to
    another session, mute its account."""
    named = {"id": post.post_id, "platform": post.platform}
    lines = (
        {"exclude": entry("exclude", **named)} if shown else {"pin": entry("highlight", **named)}
    )
    lines["move"] = entry("assign", **named, session=session)
    lines["mute"] = entry("mute", account=account_key(post.author))
    return lines


def _reason(kind: str | None, reason: str | None, post: PostView) -> str:
    """A flagged disclosure's kind and reason; only the kind when the reason quotes words the
    shown text does not hold (they are further into a cut post): never more than the post says."""
    kind = (kind or "").replace("_", " ")
    quoted = [a or b for a, b in QUOTED.findall(reason or "")]
    if reason and all(q.casefold() in post.text.casefold() for q in quoted):
        return f"{kind}: {reason}"
    return f"{kind} (further into the post)"


def _role(told: Told, pk: int, post: PostView) -> str | None:
    role = told.voices.role(post.author)
    row = told.rows.get(pk)
    profile = getattr(row, "role", None)
    return role or ROLE_NAMES.get(profile or "")


def _candidates(
    told: Told, part: Part, pks: Iterable[int], kind: str, shown: list[PostView],
    why: Callable[[int, PostView], str],
) -> list[Candidate]:  # fmt: skip
    shown_ids = {id(p) for p in shown}
    out = []
    for pk in pks:
        post = told.posts.get(pk)
        if post is None:
            continue
        session = getattr(told.rows.get(pk), "session_id", None) or GENERAL
        is_shown = id(post) in shown_ids
        out.append(Candidate(
            post=post, kind=kind, shown=is_shown, why=why(pk, post), role=_role(told, pk, post),
            session=session, lines=_lines(post, session, is_shown),
        ))  # fmt: skip
    return sorted(out, key=lambda c: not c.shown)


def _why(told: Told, shown: list[PostView]) -> Callable[[int, PostView], str]:
    """Why a candidate of a list (`shown`, what the story shows of it) is or is not shown."""

    def why(_pk: int, post: PostView) -> str:
        if any(p is post for p in shown):
            return "pinned by the organisers" if post.pinned else ""
        return told.left_out.get(id(post), "")

    return why


def _part(told: Told, part: Part) -> ReviewPart:
    scan = told.data.scan
    candidates: dict[str, list[Candidate]] = {}
    totals: dict[str, int] = {}
    for kind, listed, field in KINDS:
        shown: list[PostView] = getattr(part, field)
        pks = (
            [*scan.pinned.get(part.id, []), *scan.ranked(listed, part.id)]
            if kind == "highlight"
            else scan.ranked(listed, part.id)
        )
        pks = list(dict.fromkeys(pks))
        candidates[kind] = _candidates(told, part, pks, kind, shown, _why(told, shown))
        totals[kind] = len(pks) if kind == "highlight" else scan.counts[(part.id, listed)]
    disclosed = scan.ranked("disclosures", part.id)
    pinned = [
        pk for pk in scan.pinned.get(part.id, []) if getattr(told.rows.get(pk), "disclosure", None)
    ]
    flagged = list(dict.fromkeys([*pinned, *disclosed]))
    candidates["disclosure"] = _candidates(
        told,
        part,
        flagged,
        "disclosure",
        part.highlights,
        lambda pk, post: _reason(told.rows[pk].disclosure, told.rows[pk].disclosure_reason, post),
    )
    totals["disclosure"] = scan.counts[(part.id, "disclosures")] + len(pinned)
    return ReviewPart(part.id, part.title, part.label, candidates, totals)


def _roles(config: Config, told: Told) -> list[tuple[str, str, str]]:
    out = [(a, "organiser", "config.toml: [event] organiser_accounts")
           for a in config.event.organiser_accounts]  # fmt: skip
    out += [(a, "speaker", f"config.toml: {s.id} speaker_accounts")
            for s in config.sessions for a in s.speaker_accounts]  # fmt: skip
    out += [(a, r, "curation file: [[role]]") for a, r in sorted(told.curation.roles.items())]
    return out


def build_review(told: Told, config: Config) -> Review:
    """Every part's candidates and the accounts the story treats apart, from a told story."""
    story, ctx = told.story, told.data.context
    spam = [
        (a, n, "a bot (curation file)" if a in told.voices.bots else "most of its posts are spam",
         entry("mute", account=a))
        for a, n in sorted(ctx.spam_accounts.items(), key=lambda i: (-i[1], i[0]))
    ]  # fmt: skip
    curation: Any = told.curation.path
    return Review(
        event=story.event, generated_at=story.generated_at,
        curation=str(curation) if curation else "", sessions=[s.id for s in config.sessions],
        parts=[_part(told, p) for p in story.parts], muted=sorted(told.curation.mutes.items()),
        spam=spam, roles=_roles(config, told),
    )  # fmt: skip
