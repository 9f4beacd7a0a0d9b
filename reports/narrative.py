"""The sentences the story writes from its numbers: each part's paragraph and the About-this-data line.

Pure functions: no database, no I/O; wording varies by a part's place in the story, never at random.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aggregator.clock import EventClock
from reports.model import SourceView

__all__ = ["Facts", "join_and", "narrative", "post_label", "quality_lines", "said", "summary"]


@dataclass
class Facts:
    """What a part's paragraph is written from. `turn` (its place in the story) varies the wording
    from one part to the next, the same on every run."""

    kind: str  # session | before | after
    turn: int
    posts: int
    people: int
    copies: int = 0  # reposts and repeated texts among `posts`
    busiest: bool = False  # the day's busiest session
    quiet: bool = False  # one of its quietest
    peak: str | None = None  # "13:25"; "18:00 on Tuesday 29 November" away from the event's day
    peak_unit: str = "minute"  # minute | hour | day
    peak_count: int = 0
    later: int = 0  # a session's posts (among `posts`) made after it ended, looking back
    themes: Sequence[str] = ()  # as shown: 'Becky Malby', 'housing'
    questions: int = 0
    question: str | None = None  # one of them, to quote
    actions: int = 0
    positive: int = 0  # percentages of posts (Sentiment's, computed once)
    negative: int = 0
    top_author: str | None = None
    top_posts: int = 0
    points: Sequence[
        str
    ] = ()  # the key points as sentences (`said`): the paragraph opens with them


def _pick(f: Facts, *options: str, shift: int = 0) -> str:
    return options[(f.turn + shift) % len(options)]


def _n(n: int, one: str, many: str) -> str:
    return f"one {one}" if n == 1 else f"{n:,} {many}"


def join_and(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def said(sentence: str, speaker: str | None, author: str, others: int, turn: int = 0) -> str:
    """A key point as the paragraph says it: a speaker's line attributed to the speaker ('“…,”
    says Helen Bevan.'), anyone else's to its author; with how many others made the point."""
    words = sentence.rstrip(" .,;:")
    words = words[:1].upper() + words[1:]
    ending = "" if words[-1:] in ("!", "?") else ","
    if speaker:
        line = f"“{words}{ending}” says {speaker}"
    else:
        line = (f"“{words}{ending}” writes {author}", f"“{words}{ending}” as {author} put it")[
            turn % 2
        ]
    if others:
        posts = "one other post" if others == 1 else f"{others:,} other posts"
        line += (
            f", a point {posts} made too",
            f", echoed in {posts}",
            f", and {posts} said much the same",
        )[turn % 3]
    return line + "."


def post_label(platform: str, author: str, author_name: str | None, when: str) -> str:
    """'post by @alice at 13:25' ('… on Fri 25 Nov at 13:25' away from the event's first day):
    link text that says whose post it is and when, also read aloud out of context. `when` is as
    PostView writes it."""
    who = author.lstrip("@＠")
    who = (author_name or who) if platform == "feed" else f"@{who}"
    day, _, time = when.rpartition(", ")
    return f"post by {who or 'an unnamed account'} {f'on {day} ' if day else ''}at {time}"


def _peak(f: Facts, lead: str) -> str:
    if f.peak is None or f.peak_count < 2 or f.posts < 5:
        return ""
    if f.peak_unit == "day":
        return f", most of them on {f.peak}"
    if f.peak_unit == "hour":
        return f", busiest in the hour from {f.peak}"
    return f"{lead} {f.peak}"


def _mix(f: Facts) -> str:
    """How many were original and how many repeated someone else's: said when there were copies."""
    if not f.copies:
        return ""
    copies = "one was a repost" if f.copies == 1 else f"{f.copies:,} were reposts"
    return f" ({f.posts - f.copies:,} original; {copies})"


def _volume(f: Facts) -> str:
    who = _n(f.people, "person", "people")
    if f.posts == 1:
        where = {
            "session": "during this session",
            "before": "before the event",
            "after": "after the event",
        }
        return f"Just one post came in {where[f.kind]}, from {f.top_author}."
    mix = _mix(f)
    if f.people == 1:
        return (
            f"All {f.posts:,} posts here came from {f.top_author}{mix}{_peak(f, ', busiest at')}."
        )
    if f.kind == "before":
        return f"The build-up brought {f.posts:,} posts from {who}{mix}{_peak(f, ', busiest at')}."
    if f.kind == "after":
        return (f"Afterwards, {who} looked back on the day in {f.posts:,} posts{mix}"
                f"{_peak(f, ', busiest at')}.")  # fmt: skip
    rank = (" — the busiest session of the day" if f.busiest
            else ", one of the quieter sessions" if f.quiet else "")  # fmt: skip
    return _pick(
        f,
        f"{f.posts:,} posts from {who}{mix}{rank}{_peak(f, '; the conversation peaked around')}.",
        f"This session drew {f.posts:,} posts from {who}{mix}{rank}{_peak(f, '; it was liveliest around')}.",
        f"{f.people:,} people joined the conversation with {f.posts:,} posts{mix}{rank}{_peak(f, '; the peak came around')}.",
    )  # fmt: skip


def _later(f: Facts) -> str:
    """Posts made after the session ended, already among its posts: never counted again."""
    if f.later < 2 or f.kind != "session":
        return ""
    return _pick(f, f"{f.later:,} of them came after it ended, as people looked back.",
                 f"It was still being talked about later: {f.later:,} of these posts came afterwards.",
                 shift=2)  # fmt: skip


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
    pos, neg = f.positive, f.negative
    critical = "none critical" if neg == 0 else f"{neg}% critical"
    if pos >= 60 and neg <= 10:
        return _pick(f, f"The mood was overwhelmingly positive ({pos}% of posts).",
                     f"Reactions were warm: {pos}% of posts were positive.", shift=1)  # fmt: skip
    if neg >= 30:
        return f"It was not all praise: {neg}% of posts struck a critical note."
    if pos >= 50 and neg <= 15:
        return f"The tone was largely positive ({pos}% of posts, {critical})."
    if pos >= 25 and neg >= 15:
        return f"Reactions were mixed: {pos}% positive, {neg}% critical."
    if pos >= 30:
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
    asked = _pick(f, f"People asked {questions}, among them {quote}",
                  f"{f.questions:,} questions came up, such as {quote}",
                  f"The audience put {questions}, including {quote}", shift=2)  # fmt: skip
    return asked + then


def summary(f: Facts) -> str:
    """The paragraph's numbers, after its key points: volume and mix, peak, later posts, what
    people talked about, tone, questions and pledges, the most active voice."""
    if f.posts == 0:
        return {"session": "No posts were collected for this session.",
                "before": "Nothing was posted before the event began.",
                "after": "Nothing was posted after the event ended."}[f.kind]  # fmt: skip
    out = [_volume(f), _later(f), _topics(f), _tone(f), _asked(f)]
    if f.top_author and f.people >= 3 and f.top_posts >= 3 and f.top_posts >= 0.15 * f.posts:
        out.append(f"{f.top_author} was the most active voice, with {f.top_posts:,} posts.")
    return " ".join(s for s in out if s)


def narrative(f: Facts) -> str:
    """A paragraph a comms team could publish: what was said (the key points), then the numbers."""
    return " ".join([*f.points, summary(f)])


def _origin(s: SourceView, clock: EventClock) -> str:
    posts = f"{s.posts} post{'s' if s.posts != 1 else ''}"
    if s.status == "imported":
        return f"{s.name} ({posts}, imported)"
    when = (
        f"last collected {clock.full(s.last_ok)}" if s.last_ok else "not yet collected successfully"
    )
    return f"{s.name} ({posts}, {when})"


def _problems(sources: Sequence[SourceView], clock: EventClock) -> list[str]:
    lines = []
    for s in sources:
        if s.status == "failed":
            when = f" ({clock.full(s.last_run)})" if s.last_run else ""
            lines.append(
                f"{s.name} failed on its latest run{when}: {s.error or 'no reason recorded'}"
            )
        elif s.status == "never":
            lines.append(f"{s.name} has not been collected yet.")
        lines += [f"{s.name}: {w}" for w in s.warnings[:3]]
        if len(s.warnings) > 3:
            lines.append(f"{s.name}: {len(s.warnings) - 3} more warnings (see aggregator status).")
    return lines


IDENTIFIERS = {
    "nhs_number": ("NHS number", "NHS numbers"),
    "phone": ("phone number", "phone numbers"),
    "email": ("e-mail address", "e-mail addresses"),
    "address": ("home address", "home addresses"),
}


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def quality_lines(
    sources: Sequence[SourceView],
    hidden: Mapping[str, int],
    untagged: int,
    spam: tuple[int, int] = (0, 0),
    redacted: Mapping[str, int] | None = None,
    *,
    clock: EventClock,
) -> list[str]:
    """The data-quality line: where posts came from and when, failures, gaps, and what is not shown.
    `hidden` counts posts not shown by reason (deleted, excluded, opted_out, muted, and undated:
    no time their source gave can be read, connectors.undated); `spam` is (posts, accounts) set
    aside as spam; `redacted` the personal identifiers removed by kind; times are told by the
    event's `clock`."""
    used = [s for s in sources if s.posts or s.status != "never"]
    lines = [f"Posts came from {', '.join(_origin(s, clock) for s in used)}."] if used else []
    problems = _problems(sources, clock)
    lines += problems or (["No failures or gaps were recorded on the latest runs."] if used else [])
    deleted, excluded, opted = hidden["deleted"], hidden["excluded"], hidden["opted_out"]
    muted = hidden.get("muted", 0)
    reasons = [
        f"{deleted} deleted post{'s' if deleted != 1 else ''}" if deleted else "",
        f"{excluded} excluded by the organisers" if excluded else "",
        f"{opted} from people who opted out" if opted else "",
        f"{muted} from muted accounts" if muted else "",
    ]
    if any(reasons):
        lines.append(f"Not shown: {join_and([r for r in reasons if r])}.")
    if undated := hidden.get("undated", 0):
        whose = "its" if undated == 1 else "their"
        lines.append(f"{_plural(undated, 'post has', 'posts have')} no time {whose} source gave "
                     "that can be read: counted, shown in no part.")  # fmt: skip
    posts, accounts = spam
    if posts:
        who = f", {_plural(accounts, 'account', 'accounts')} in all" if accounts else ""
        lines.append(f"{_plural(posts, 'post was', 'posts were')} set aside as spam{who}: "
                     "counted, never shown.")  # fmt: skip
    found = [_plural(n, *IDENTIFIERS[k]) for k, n in (redacted or {}).items() if n]
    if found:
        lines.append(f"Personal identifiers removed from the posts shown: {join_and(found)}.")
    if untagged:
        lines.append(f"{untagged} posts are not matched to a session yet (run aggregator tag).")
    return lines or ["No posts have been collected yet."]
