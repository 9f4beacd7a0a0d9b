"""The tagging stage over the database: `tag` (incremental, writes assignments), `explain` one
stored post, `evaluate` the rules on labelled JSONL. The rules themselves are in aggregator.tagging."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from aggregator.curation import Curated, Curation, load_curation
from aggregator.settings import Config
from aggregator.tagging import Decision, Evaluation, Explanation, Programme, TagInput, decide_all
from aggregator.tagging import evaluate as score_labels
from aggregator.tagging import explain as explain_rules
from connectors.archives import read_jsonl
from connectors.undated import undated
from storage.models import POST_TABLE, Assignment
from storage.queries import local_replies, resolve_replies, save_assignments, utcnow

__all__ = ["EvaluationReport", "PostExplanation", "TagSummary", "evaluate", "explain", "tag"]

POSTS = POST_TABLE
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]


@dataclass
class TagSummary:
    tagged: int
    full: bool
    by_session: dict[str | None, int]
    curated: int = 0  # posts an organiser's correction applies to
    unmatched: list[str] = field(default_factory=list)  # corrections that name no stored post


TAG_COLUMNS = (
    "id", "platform", "post_id", "created_at", "text", "hashtags", "mentions", "reply_to", "url",
)  # fmt: skip
STORED = (
    "session_id", "score", "reason", "method", "programme", "excluded", "highlight", "tagged_at",
)  # fmt: skip
# A post whose source gave no readable time (connectors.undated) is placed in no session: the
# programme is a timetable, and even a session's hashtag may be used before or after it.
UNDATED_REASON = "no time: its source gave none that can be read, so it is placed in no session"


def _tag_input(row: Any) -> TagInput:
    return TagInput(
        post_id=row.post_id,
        created_at=row.created_at,
        text=row.text,
        hashtags=tuple(row.hashtags or ()),
        mentions=tuple(row.mentions or ()),
        reply_to=row.reply_to,
        platform=row.platform,
    )


def _fingerprint(programme: Programme, curation: Curation) -> str:
    return f"{programme.fingerprint()}+{curation.fingerprint()}"


def _parents(conn: Any, rows: list[Any]) -> dict[tuple[str, str], Decision]:
    """Stored decisions for the parents of replies in `rows` (which may have been tagged before)."""
    wanted = {(r.platform, r.reply_to) for r in rows if r.reply_to}
    found: dict[tuple[str, str], Decision] = {}
    stmt = select(
        POSTS.c.platform, POSTS.c.post_id, ASSIGNMENTS.c.session_id, ASSIGNMENTS.c.score,
        ASSIGNMENTS.c.reason,
    ).join(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id)  # fmt: skip
    ids = sorted({pid for _, pid in wanted})
    for i in range(0, len(ids), 400):
        for r in conn.execute(stmt.where(POSTS.c.post_id.in_(ids[i : i + 400]))):
            if (r.platform, r.post_id) in wanted:
                found[(r.platform, r.post_id)] = Decision(r.session_id, r.score, r.reason)
    return found


def _replies_to(conn: Any, rows: list[Any]) -> list[Any]:
    """Stored replies to `rows` (and theirs in turn): decided before their parent arrived, so redone.
    A reply names its parent by id, or (Mastodon) by the parent's id local to one instance."""
    stmt = select(*(POSTS.c[k] for k in TAG_COLUMNS))
    seen = {(r.platform, r.post_id) for r in rows}
    frontier, found = list(rows), []
    while frontier:
        keys = {(r.platform, r.post_id) for r in frontier}
        ids, step = sorted({pid for _, pid in keys}), []
        candidates = local_replies(conn, [r.id for r in frontier], TAG_COLUMNS)
        for i in range(0, len(ids), 400):
            candidates += [
                r
                for r in conn.execute(stmt.where(POSTS.c.reply_to.in_(ids[i : i + 400])))
                if (r.platform, r.reply_to) in keys
            ]
        for r in candidates:
            if (r.platform, r.post_id) not in seen:
                seen.add((r.platform, r.post_id))
                step.append(r)
        found += step
        frontier = step
    return found


def _to_tag(conn: Any, fingerprint: str, full: bool) -> tuple[list[Any], bool]:
    """Posts with no assignment yet (and replies waiting for them), or all when anything changed;
    never a post with no time, which stays untagged until a copy with a time arrives."""
    stale = conn.execute(
        select(ASSIGNMENTS.c.post_pk).where(ASSIGNMENTS.c.programme != fingerprint).limit(1)
    ).first()
    full = full or stale is not None
    stmt = select(*(POSTS.c[k] for k in TAG_COLUMNS)).order_by(POSTS.c.created_at, POSTS.c.id)
    if full:
        return _timed(conn.execute(stmt)), True
    untagged = stmt.outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id).where(
        ASSIGNMENTS.c.post_pk.is_(None)
    )
    new = _timed(conn.execute(untagged))
    return new + _timed(_replies_to(conn, new)), False


def _timed(rows: Iterable[Any]) -> list[Any]:
    """`rows` without the posts that have no time (they come first: UNDATED is the earliest)."""
    return [r for r in rows if not undated(r.created_at)]


def _unmatched(conn: Any, curation: Curation) -> list[str]:
    """Corrections naming no stored post: a typo in an id or url, or a post not collected yet."""
    ids, urls = curation.wanted_ids()
    if not ids and not urls:
        return []
    stmt = select(POSTS.c.platform, POSTS.c.post_id, POSTS.c.url).where(
        or_(POSTS.c.post_id.in_(sorted(ids)), POSTS.c.url.in_(sorted(urls)))
    )
    rows = list(conn.execute(stmt))
    return [
        f"{e.where} matches no stored post (check its id or url)"
        for e in curation.entries
        if not any(e.matches(r.platform, r.post_id, r.url) for r in rows)
    ]


def tag(engine: Engine, config: Config, full: bool = False, batch: int = 2000) -> TagSummary:
    """Tag new posts; everything again when the programme, rules or curation changed (or `full`)."""
    programme, curation = Programme.from_config(config), load_curation(config)
    fingerprint = _fingerprint(programme, curation)
    with engine.connect() as conn:
        rows, full = _to_tag(conn, fingerprint, full)
        rows = resolve_replies(conn, rows)  # a Mastodon reply_to is local to an instance
        known = {} if full else _parents(conn, rows)
        unmatched = _unmatched(conn, curation)
    by_key = {(r.platform, r.post_id): r for r in rows}
    curated: dict[tuple[str, str], Curated] = {}

    def correct(post: TagInput, decision: Decision) -> Decision:
        key = (post.platform, post.post_id)
        curated[key] = curation.apply(post.platform, post.post_id, by_key[key].url, decision)
        return curated[key].decision

    decide_all([_tag_input(r) for r in rows], programme, known, correct)
    now = utcnow()
    values = [
        {"post_pk": by_key[k].id, "session_id": c.decision.session_id, "score": c.decision.score,
         "reason": c.decision.reason, "method": c.method, "programme": fingerprint, "tagged_at": now,
         "excluded": c.excluded, "highlight": c.highlight}
        for k, c in curated.items()
    ]  # fmt: skip
    save_assignments(engine, values, batch)
    counts = Counter(c.decision.session_id for c in curated.values())
    touched = sum(1 for c in curated.values() if c.entries)
    return TagSummary(len(values), full, dict(counts), touched, unmatched)


@dataclass
class PostExplanation:
    """One stored post: what the rules say now and why, the corrections, and what is stored."""

    post: Any  # platform, post_id, created_at, text, url, reply_to
    why: Explanation  # the rules under the current programme
    final: Curated  # after the organisers' corrections
    stored: Any | None  # its stored assignment; None when not tagged yet
    current: bool  # stored under the current programme, rules and curation


def explain(engine: Engine, config: Config, post_id: str) -> list[PostExplanation]:
    """Every stored post with this id (one per platform), explained. Empty when none is stored."""
    programme, curation = Programme.from_config(config), load_curation(config)
    fingerprint = _fingerprint(programme, curation)
    cols = [*(POSTS.c[k] for k in TAG_COLUMNS), *(ASSIGNMENTS.c[k] for k in STORED)]
    stmt = select(*cols).outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id)
    with engine.connect() as conn:
        rows = list(conn.execute(stmt.where(POSTS.c.post_id == post_id).order_by(POSTS.c.platform)))
        rows = resolve_replies(conn, rows)
        parents = _parents(conn, rows)
    out = []
    for r in rows:
        if undated(r.created_at):  # in no session, whatever the rules or the curation say
            why = Explanation(Decision(None, 0.0, UNDATED_REASON), (), None, False, None)
            final = Curated(why.decision)
        else:
            parent = parents.get((r.platform, r.reply_to or ""))
            why = explain_rules(_tag_input(r), programme, parent)
            final = curation.apply(r.platform, r.post_id, r.url, why.decision)
        stored = r if r.tagged_at is not None else None
        out.append(PostExplanation(r, why, final, stored, r.programme == fingerprint))
    return out


@dataclass
class EvaluationReport:
    path: Path
    evaluation: Evaluation
    wrong: list[tuple[str, str | None, Decision]]  # post id, expected session, what the rules said
    rejected: list[str]  # lines that could not be read
    unlabelled: int  # posts without expected_session: tagged (they may be parents), not scored


def evaluate(config: Config, path: Path) -> EvaluationReport:
    """Tag a labelled JSONL file in memory with the rules alone; compare with `expected_session`.

    Raises ConnectorError when the file cannot be read.
    """
    programme = Programme.from_config(config)
    posts, labels, rejected = [], {}, []
    for page in read_jsonl(path):
        rejected += page.rejected
        for p in page.posts:
            posts.append(TagInput(p.id, p.created_at, p.text, tuple(p.hashtags),
                                  tuple(p.mentions), p.reply_to, p.platform))  # fmt: skip
            if "expected_session" in p.raw:
                label = p.raw["expected_session"]
                labels[(p.platform, p.id)] = None if label is None else str(label)
    decisions = decide_all(posts, programme)
    pairs = [(label, decisions[k].session_id) for k, label in labels.items()]
    wrong = [(k[1], e, decisions[k]) for k, e in labels.items() if e != decisions[k].session_id]
    return EvaluationReport(path, score_labels(pairs), wrong, rejected, len(posts) - len(labels))
