"""The sentences the story writes from its numbers: each part's paragraph and the About-this-data line.

Pure functions: no database, no I/O; wording varies by a part's place in the story, never at random.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from reports.model import SourceView

__all__ = ["Facts", "join_and", "narrative", "quality_lines"]


@dataclass
class Facts:
    """What a part's paragraph is written from. `turn` (its place in the story) varies the wording
    from one part to the next, the same on every run."""

    kind: str  # session | before | after
    turn: int
    posts: int
    people: int
    busiest: bool = False  # the day's busiest session
    quiet: bool = False  # one of its quietest
    peak: str | None = None
    peak_unit: str = "minute"  # minute | hour | day
    peak_count: int = 0
    later: int = 0  # a session's posts after it ended, looking back
    themes: Sequence[str] = ()  # as shown: 'Becky Malby', 'housing'
    questions: int = 0
    question: str | None = None  # one of them, to quote
    actions: int = 0
    positive: float = 0.0  # shares of posts
    negative: float = 0.0
    top_author: str | None = None
    top_posts: int = 0


def _pick(f: Facts, *options: str, shift: int = 0) -> str:
    return options[(f.turn + shift) % len(options)]


def _n(n: int, one: str, many: str) -> str:
    return f"one {one}" if n == 1 else f"{n:,} {many}"


def join_and(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _peak(f: Facts, lead: str) -> str:
    if f.peak is None or f.peak_count < 2 or f.posts < 5:
        return ""
    if f.peak_unit == "day":
        return f", most of them on {f.peak}"
    if f.peak_unit == "hour":
        return f", busiest in the hour from {f.peak}"
    burst = f" ({f.peak_count:,} posts in a single minute)" if f.peak_count >= 3 else ""
    return f"{lead} {f.peak}{burst}"


def _volume(f: Facts) -> str:
    who = _n(f.people, "person", "people")
    if f.posts == 1:
        where = {
            "session": "during this session",
            "before": "before the event",
            "after": "after the event",
        }
        return f"Just one post came in {where[f.kind]}, from {f.top_author}."
    if f.people == 1:
        return f"All {f.posts:,} posts here came from {f.top_author}{_peak(f, ', busiest at')}."
    if f.kind == "before":
        return f"The build-up brought {f.posts:,} posts from {who}{_peak(f, ', busiest at')}."
    if f.kind == "after":
        return f"Afterwards, {who} looked back on the day in {f.posts:,} posts{_peak(f, ', busiest at')}."
    rank = (" — the busiest session of the day" if f.busiest
            else ", one of the quieter sessions" if f.quiet else "")  # fmt: skip
    return _pick(
        f,
        f"{f.posts:,} posts from {who}{rank}{_peak(f, '; the conversation peaked at')}.",
        f"This session drew {f.posts:,} posts from {who}{rank}{_peak(f, '; activity peaked at')}.",
        f"{f.people:,} people joined the conversation with {f.posts:,} posts{rank}{_peak(f, '; the peak came at')}.",
    )


def _topics(f: Facts) -> str:
    # participles ('registered', 'inspired') make poor topics in a sentence; the chips still show them
    topics = [t for t in f.themes if " " in t or not t.casefold().endswith("ed")][:3]
    if not topics:
        return ""
    lead = _pick(
        f, "People talked most about", "The talk centred on", "Much of the conversation was about"
    )
    return f"{lead} {join_and(topics)}."


def _tone(f: Facts) -> str:
    if f.posts < 3:
        return ""
    pos, neg = round(100 * f.positive), round(100 * f.negative)
    critical = "none critical" if neg == 0 else f"{neg}% critical"
    if f.positive >= 0.6 and f.negative <= 0.1:
        return _pick(f, f"The mood was overwhelmingly positive ({pos}% of posts).",
                     f"Reactions were warm: {pos}% of posts were positive.", shift=1)  # fmt: skip
    if f.negative >= 0.3:
        return f"It was not all praise: {neg}% of posts struck a critical note."
    if f.positive >= 0.5 and f.negative <= 0.15:
        return f"The tone was largely positive ({pos}% of posts, {critical})."
    if f.positive >= 0.25 and f.negative >= 0.15:
        return f"Reactions were mixed: {pos}% positive, {neg}% critical."
    if f.positive >= 0.3:
        return (
            f"Many posts were appreciative ({pos}%), {critical}; the rest reported what was said."
        )
    return _pick(f, "Most posts were matter-of-fact, more reporting than reacting.",
                 "The tone was mostly neutral: people reported more than they reacted.")  # fmt: skip


def _asked(f: Facts) -> str:
    questions, actions = (
        _n(f.questions, "question", "questions"),
        _n(f.actions, "pledge", "pledges"),
    )
    if f.actions and not f.questions:
        return f"People made {actions} to act."
    if not f.questions:
        return ""
    quote = f"“{f.question}”" if f.question else ""
    then = f" People also made {actions} to act." if f.actions else ""
    if f.questions == 1:
        return (f"One question came up{': ' + quote if quote else '.'}" + then).strip()
    if not quote:
        return f"People asked {questions}.{then}"
    said = _pick(f, f"People asked {questions}, among them {quote}",
                 f"{f.questions:,} questions came up, such as {quote}",
                 f"The audience put {questions}, including {quote}", shift=2)  # fmt: skip
    return said + then


def narrative(f: Facts) -> str:
    """A paragraph a comms team could publish: volume, peak, what people talked about, tone, questions."""
    if f.posts == 0:
        return {"session": "No posts were collected for this session.",
                "before": "Nothing was posted before the event began.",
                "after": "Nothing was posted after the event ended."}[f.kind]  # fmt: skip
    out = [_volume(f)]
    if f.later >= 2 and f.kind == "session":
        out.append(_pick(f, f"Another {f.later:,} looked back on it after it ended.",
                         f"It was still being talked about later: {f.later:,} more posts came afterwards.",
                         shift=2))  # fmt: skip
    out += [_topics(f), _tone(f)]
    out.append(_asked(f))
    if f.top_author and f.people >= 3 and f.top_posts >= 3 and f.top_posts >= 0.15 * f.posts:
        out.append(f"{f.top_author} was the most active voice, with {f.top_posts:,} posts.")
    return " ".join(s for s in out if s)


def _at(when: datetime) -> str:
    return f"{when.day} {when:%B %Y} at {when:%H:%M}"


def _origin(s: SourceView) -> str:
    posts = f"{s.posts} post{'s' if s.posts != 1 else ''}"
    if s.status == "imported":
        return f"{s.name} ({posts}, imported)"
    when = f"last collected {_at(s.last_ok)}" if s.last_ok else "not yet collected successfully"
    return f"{s.name} ({posts}, {when})"


def _problems(sources: Sequence[SourceView]) -> list[str]:
    lines = []
    for s in sources:
        if s.status == "failed":
            when = f" ({_at(s.last_run)})" if s.last_run else ""
            lines.append(
                f"{s.name} failed on its latest run{when}: {s.error or 'no reason recorded'}"
            )
        elif s.status == "never":
            lines.append(f"{s.name} has not been collected yet.")
        lines += [f"{s.name}: {w}" for w in s.warnings[:3]]
        if len(s.warnings) > 3:
            lines.append(f"{s.name}: {len(s.warnings) - 3} more warnings (see aggregator status).")
    return lines


def quality_lines(
    sources: Sequence[SourceView], hidden: Mapping[str, int], untagged: int
) -> list[str]:
    """The data-quality line: where posts came from and when, failures, gaps, and what is not shown.
    `hidden` counts posts not shown by reason (deleted, excluded, opted_out)."""
    used = [s for s in sources if s.posts or s.status != "never"]
    lines = [f"Posts came from {', '.join(_origin(s) for s in used)}."] if used else []
    problems = _problems(sources)
    lines += problems or (["No failures or gaps were recorded on the latest runs."] if used else [])
    deleted, excluded, opted = hidden["deleted"], hidden["excluded"], hidden["opted_out"]
    reasons = [
        f"{deleted} deleted post{'s' if deleted != 1 else ''}" if deleted else "",
        f"{excluded} excluded by the organisers" if excluded else "",
        f"{opted} from people who opted out" if opted else "",
    ]
    if any(reasons):
        lines.append(f"Not shown: {join_and([r for r in reasons if r])}.")
    if untagged:
        lines.append(f"{untagged} posts are not matched to a session yet (run aggregator tag).")
    return lines or ["No posts have been collected yet."]
