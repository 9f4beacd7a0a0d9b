"""The tagging stage over the database: `tag` (incremental, writes assignments), `explain` one
stored post, `evaluate` the rules on labelled JSONL. The rules themselves are in aggregator.tagging.

`tag` streams the posts to decide in narrow columns, each with what its decision needs of its
parent, through tagging.Decider, and writes the decisions in batches as they come, all in one
transaction: memory grows with the posts replied to, not with every post (docs/tagging.md, "Speed")."""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Text, and_, cast, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine

from aggregator.curation import Curated, Curation, load_curation
from aggregator.settings import Config
from aggregator.tagging import (
    Decider,
    Decision,
    Evaluation,
    Explanation,
    Key,
    Programme,
    TagInput,
    decide_all,
)
from aggregator.tagging import evaluate as score_labels
from aggregator.tagging import explain as explain_rules
from connectors.archives import read_jsonl
from connectors.undated import UNDATED, undated
from storage.db import writer
from storage.models import POST_TABLE, Assignment
from storage.moderation import disagreements, moderated
from storage.queries import BulkUpsert, resolve_replies, storage_errors, utcnow

__all__ = ["EvaluationReport", "PostExplanation", "TagSummary", "evaluate", "explain", "tag"]

POSTS = POST_TABLE
ASSIGNMENTS = Assignment.__table__  # type: ignore[attr-defined]
PARENT = POSTS.alias("parent")
PARENT_TAG = ASSIGNMENTS.alias("parent_assignment")
READ_AHEAD = 5000  # rows fetched from the database at a time
IN_LIMIT = 400  # values in one IN (...): under SQLite's bound-parameter limit


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
LISTS = ("hashtags", "mentions")
STORED = (
    "session_id", "score", "reason", "method", "programme", "excluded", "highlight", "tagged_at",
)  # fmt: skip
# A post whose source gave no readable time (connectors.undated) is placed in no session: the
# programme is a timetable, and even a session's hashtag may be used before or after it.
UNDATED_REASON = "no time: its source gave none that can be read, so it is placed in no session"


@dataclass(frozen=True)
class StoredPost(TagInput):
    """A stored post as the rules see it, and the row its decision is written to."""

    pk: int = 0
    url: str | None = None


def _tag_input(row: Any, parent: str | None = None) -> StoredPost:
    """The post in `row`; `parent`: the post id it replies to, when its reply_to is a local one."""
    return StoredPost(
        post_id=row.post_id,
        created_at=row.created_at,
        text=row.text,
        hashtags=tuple(row.hashtags or ()),
        mentions=tuple(row.mentions or ()),
        reply_to=parent or row.reply_to,
        platform=row.platform,
        pk=row.id,
        url=row.url,
    )


def _fingerprint(programme: Programme, curation: Curation) -> str:
    return f"{programme.fingerprint()}+{curation.fingerprint()}"


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _parents(conn: Connection, keys: Iterable[Key]) -> dict[Key, Decision]:
    """The stored decisions of the posts `keys`, found by the unique (platform, post id) index."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for platform, post_id in keys:
        wanted[platform].add(post_id)
    stmt = select(
        POSTS.c.post_id, ASSIGNMENTS.c.session_id, ASSIGNMENTS.c.score, ASSIGNMENTS.c.reason
    ).join(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id)
    found: dict[Key, Decision] = {}
    for platform, ids in wanted.items():
        for chunk in _chunks(sorted(ids), IN_LIMIT):
            where = and_(POSTS.c.platform == platform, POSTS.c.post_id.in_(chunk))
            for r in conn.execute(stmt.where(where)):
                found[(platform, r.post_id)] = Decision(r.session_id, r.score, r.reason)
    return found


@dataclass
class _Replies:
    """Every stored reply, read once in narrow columns before tagging."""

    parents: set[Key] = field(default_factory=set)  # replied to: the decisions kept while tagging
    local: dict[int, Key] = field(default_factory=dict)  # reply pk -> parent, named by a local id
    tagged: dict[Key, list[tuple[int, Key]]] = field(default_factory=dict)  # (pk, key) by parent

    def add(self, pk: int, key: Key, parent: Key, tagged: bool) -> None:
        self.parents.add(parent)
        if tagged:
            self.tagged.setdefault(parent, []).append((pk, key))


def _replies(conn: Connection, redo: bool) -> _Replies:
    """The stored replies: whom each replies to (a Mastodon reply naming its parent by an id
    local to an instance resolved through the sightings, storage.queries.resolve_replies), and,
    for `redo`, which are tagged already."""
    stmt = select(
        POSTS.c.id, POSTS.c.platform, POSTS.c.post_id, POSTS.c.reply_to, POSTS.c.reply_to_via,
        ASSIGNMENTS.c.post_pk.is_not(None).label("tagged"),
    ).outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id).where(
        POSTS.c.reply_to.is_not(None)
    )  # fmt: skip
    found, local = _Replies(), []
    for r in conn.execution_options(yield_per=READ_AHEAD).execute(stmt):
        if r.reply_to_via is not None:
            local.append(r)
        else:
            found.add(r.id, (r.platform, r.post_id), (r.platform, r.reply_to), redo and r.tagged)
    for chunk in _chunks(local, IN_LIMIT):
        for r, resolved in zip(chunk, resolve_replies(conn, chunk), strict=True):
            parent = (r.platform, resolved.reply_to)
            found.add(r.id, (r.platform, r.post_id), parent, redo and r.tagged)
            if resolved.reply_to != r.reply_to:
                found.local[r.id] = parent
    return found


def _stale(conn: Connection, fingerprint: str) -> bool:
    """Whether any post was tagged under another programme, rules or curation."""
    stmt = select(ASSIGNMENTS.c.post_pk).where(ASSIGNMENTS.c.programme != fingerprint).limit(1)
    return conn.execute(stmt).first() is not None


def _untagged(conn: Connection) -> bool:
    """Whether any post with a time has no assignment yet: the question before any work."""
    stmt = (
        select(POSTS.c.id)
        .outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id)
        .where(ASSIGNMENTS.c.post_pk.is_(None), POSTS.c.created_at != UNDATED)
        .limit(1)
    )
    return conn.execute(stmt).first() is not None


def _posts(untagged: bool) -> Any:
    """Posts with a time (those without one stay untagged until a copy brings one), in time
    order, each with what its decision needs of its parent: whether it is stored with a time and
    is itself a reply, and its stored decision (_Run._read takes the columns in this order).
    `untagged`: only the posts not tagged yet, found before anything else is read of them."""
    posts = POSTS.outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id) if untagged else POSTS
    stmt = (
        select(
            *(POSTS.c[k] for k in TAG_COLUMNS if k not in LISTS),
            *(cast(POSTS.c[k], Text).label(k) for k in LISTS),
            (PARENT.c.created_at != UNDATED).label("parent_timed"),
            PARENT.c.reply_to.is_not(None).label("parent_replies"),
            PARENT_TAG.c.post_pk.is_not(None).label("parent_tagged"),
            PARENT_TAG.c.session_id.label("parent_session"),
            PARENT_TAG.c.score.label("parent_score"),
            PARENT_TAG.c.reason.label("parent_reason"),
        )
        .select_from(
            posts.outerjoin(PARENT, and_(PARENT.c.platform == POSTS.c.platform,
                                         PARENT.c.post_id == POSTS.c.reply_to))
            .outerjoin(PARENT_TAG, PARENT_TAG.c.post_pk == PARENT.c.id)
        )
        .where(POSTS.c.created_at != UNDATED)
        .order_by(POSTS.c.created_at, POSTS.c.id)
    )  # fmt: skip
    return stmt.where(ASSIGNMENTS.c.post_pk.is_(None)) if untagged else stmt


def _listed(stored: str) -> tuple[str, ...]:
    """A list column read as its JSON text: decoded here at a fraction of the JSON type's cost."""
    return () if stored == "[]" else tuple(json.loads(stored))


# A post to decide, whether its parent may be decided in the same run, its parent's stored decision.
_Read = tuple[StoredPost, bool, Decision | None]


class _Run:
    """One `tag` run: every post with a time (`full`), or the new ones and the stored replies to
    them (decided before their parent arrived, so redone), streamed through the Decider; each
    decision corrected by the curation before any reply follows it."""

    def __init__(self, conn: Connection, programme: Programme, curation: Curation, full: bool):
        self.conn, self.curation, self.full = conn, curation, full
        self.replies = _replies(conn, redo=not full)
        self.decider = Decider(programme, self._correct, self.replies.parents.__contains__)
        self.known = {} if full else _parents(conn, self.replies.local.values())
        self.curated: dict[int, Curated] = {}  # corrections of the decisions not yet written
        self.new_parents: list[Key] = []  # new posts with tagged replies: those are redone
        self.sessions: Counter[str | None] = Counter()  # decided posts by session
        self.touched = 0  # decided posts a correction applies to
        self.now = utcnow()  # every decision's tagged_at

    def assignments(self, fingerprint: str) -> Iterator[dict[str, Any]]:
        """The row of each decision, as soon as it is decided; the reading ends with the last."""
        now = self.now
        for post, c in self.decided():
            self.sessions[c.decision.session_id] += 1
            self.touched += bool(c.entries)
            yield {"post_pk": post.pk, "session_id": c.decision.session_id,
                   "score": c.decision.score, "reason": c.decision.reason, "method": c.method,
                   "programme": fingerprint, "tagged_at": now, "excluded": c.excluded,
                   "highlight": c.highlight}  # fmt: skip
        # Let go of the snapshot read before the writes commit: a SQLite database that could not
        # be put in WAL mode would wait on it.
        self.conn.rollback()

    def decided(self) -> Iterator[tuple[StoredPost, Curated]]:
        """Every post of the run with its decision, as soon as it is decided."""
        read = self.conn.execution_options(yield_per=READ_AHEAD)
        for row in read.execute(_posts(untagged=not self.full)):
            yield from self._corrected(self.decider.add(*self._read(row, new=True)))
        for chunk in _chunks(self._redone(), IN_LIMIT):
            for row in read.execute(_posts(untagged=False).where(POSTS.c.id.in_(chunk))):
                yield from self._corrected(self.decider.add(*self._read(row, new=False)))
        yield from self._corrected(self.decider.finish())

    def _read(self, row: Any, new: bool) -> _Read:
        """The post in `row`, whether its parent may be decided in this run, and the parent's
        stored decision."""
        (pk, platform, post_id, created_at, text, reply_to, url, hashtags, mentions, parent_timed,
         parent_replies, parent_tagged, parent_session, parent_score, parent_reason) = row  # fmt: skip
        local = self.replies.local.get(pk)
        known = None
        if local is not None:  # found through a sighting: stored, perhaps to come in this run
            reply_to, in_run, known = local[1], True, self.known.get(local)
        else:  # stored with a time, and new or a reply that may be redone (or everything is redone)
            in_run = bool(parent_timed) and (self.full or not parent_tagged or bool(parent_replies))
            if parent_tagged and not self.full:
                known = Decision(parent_session, parent_score, parent_reason)
        post = StoredPost(post_id, created_at, text, _listed(hashtags), _listed(mentions), reply_to,
                          platform, pk, url)  # fmt: skip
        if new and not self.full and (platform, post_id) in self.replies.tagged:
            self.new_parents.append((platform, post_id))
        return post, in_run, known

    def _redone(self) -> list[int]:
        """The tagged replies to the new posts, and the tagged replies to those in turn."""
        found, seen, frontier = [], set(), self.new_parents
        while frontier:
            step = []
            for parent in frontier:
                for pk, key in self.replies.tagged.get(parent, ()):
                    if key not in seen:
                        seen.add(key)
                        found.append(pk)
                        step.append(key)
            frontier = step
        return found

    def _correct(self, post: StoredPost, decision: Decision) -> Decision:
        self.curated[post.pk] = self.curation.apply(post.platform, post.post_id, post.url, decision)
        return self.curated[post.pk].decision

    def _corrected(
        self, done: list[tuple[StoredPost, Decision]]
    ) -> list[tuple[StoredPost, Curated]]:
        return [(post, self.curated.pop(post.pk)) for post, _ in done]


@functools.cache
def _assignment_upsert(dialect: Dialect) -> BulkUpsert:
    """Assignments in, each stored one replaced: compiled once, rows handed to the driver."""
    insert = (postgresql if dialect.name == "postgresql" else sqlite).insert(ASSIGNMENTS)
    stmt = insert.on_conflict_do_update(
        index_elements=["post_pk"], set_={k: insert.excluded[k] for k in STORED}
    )
    return BulkUpsert.compile(stmt, dialect, ("post_pk", *STORED))


def _save(
    engine: Engine, values: Iterable[dict[str, Any]], batch: int, same: dict[str, Any]
) -> None:
    """Upsert assignments as they come, `batch` rows a statement, in one transaction: a run killed
    half-way leaves every assignment as it was. `same`: the values every row shares."""
    with storage_errors("could not save session assignments"), writer(engine).begin() as conn:
        upsert = _assignment_upsert(conn.dialect)
        for chunk in _chunks(values, batch):
            upsert.run(conn, chunk, same)


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
    """Tag new posts; everything again when the programme, rules or curation (the file and the
    moderators' decisions, storage.moderation) changed (or `full`)."""
    programme, filed = Programme.from_config(config), load_curation(config)
    curation = moderated(engine, filed)
    fingerprint = _fingerprint(programme, curation)
    with engine.connect() as conn:  # a reader (one snapshot); the writes go through another
        full = full or _stale(conn, fingerprint)
        unmatched = _unmatched(conn, filed) + disagreements(engine, filed)
        if not full and not _untagged(conn):
            return TagSummary(0, False, {}, 0, unmatched)
        run = _Run(conn, programme, curation, full)
        _save(
            engine,
            run.assignments(fingerprint),
            batch,
            {"programme": fingerprint, "tagged_at": run.now},
        )
    sessions = run.sessions
    return TagSummary(sessions.total(), full, dict(sessions), run.touched, unmatched)


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
    programme, curation = Programme.from_config(config), moderated(engine, load_curation(config))
    fingerprint = _fingerprint(programme, curation)
    cols = [*(POSTS.c[k] for k in TAG_COLUMNS), *(ASSIGNMENTS.c[k] for k in STORED)]
    stmt = select(*cols).outerjoin(ASSIGNMENTS, ASSIGNMENTS.c.post_pk == POSTS.c.id)
    with engine.connect() as conn:
        rows = list(conn.execute(stmt.where(POSTS.c.post_id == post_id).order_by(POSTS.c.platform)))
        rows = resolve_replies(conn, rows)
        parents = _parents(conn, [(r.platform, r.reply_to) for r in rows if r.reply_to])
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
