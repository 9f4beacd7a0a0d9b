"""The editorial decisions over the whole event (docs/report.md, "Editorial rules"), from the stored
analyses: which posts are copies and of which original, which are spam by repetition, and which
accounts post mostly spam. The rules are reports/editorial.py's (`build_context`, over posts oldest
first); here SQL counts, groups and windows decide them over every visible post, and Python holds
state only for the posts concerned: text copies and reposts, an account's repeated words, and the
posts with links of one account at a time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from sqlalchemy import and_, case, func, not_, or_, select
from sqlalchemy.engine import Connection

from reports.scope import ANALYSIS, POSTS, Accounts, Scope, as_text, decoded

__all__ = ["REPEATS", "Authors", "Context", "authors", "context"]

REPEATS = 3  # the same text or link from one account this many times is spam (reports/editorial)
CHUNK = 500  # values bound in one IN list


@dataclass
class Context:
    """Which posts are copies (reposts, told by their own row, and `text_copies`), how many copies
    each original has, which posts are spam by repetition (spam on its own is the analysis's
    flag) and which accounts post mostly spam, with their posts."""

    text_copies: set[int] = field(default_factory=set)  # pks of posts saying an earlier one's words
    reach: Counter[int] = field(default_factory=Counter)  # an original's pk -> its copies
    spam_posts: set[int] = field(default_factory=set)  # pks: spam by repetition alone
    spam_accounts: dict[str, int] = field(default_factory=dict)  # account key -> its posts


@dataclass
class Authors:
    """Who posted, from one count per part and author: each part's people, the event's, each
    account's posts and stored spam (an account whose author is written more than one way, such
    as '@Ana@x.org' and 'ana@x.org', summed: `aliased` holds such authors), and each part's most
    active authors that are no organiser, speaker or bot, as (posts, author, name), at most
    `CANDIDATES` of them (`crowded`: the parts that had more)."""

    people: Counter[str] = field(default_factory=Counter)  # part -> authors
    everyone: int = 0
    posted: Counter[str] = field(default_factory=Counter)  # account -> posts
    spam: Counter[str] = field(default_factory=Counter)  # account -> posts spam on their own
    aliased: set[str] = field(default_factory=set)
    linked: Counter[str] = field(default_factory=Counter)  # account -> posts with links
    active: dict[str, list[tuple[int, str, str | None]]] = field(default_factory=dict)
    crowded: set[str] = field(default_factory=set)


CANDIDATES = 64  # a part's most active authors kept before its spam accounts are known


def authors(
    conn: Connection, scope: Scope, accounts: Accounts, not_audience: Iterable[str] = ()
) -> Authors:
    """`Authors` of the visible posts; `not_audience` are account keys."""
    spam = func.sum(case((ANALYSIS.c.spam.is_(True), 1), else_=0))
    linked = func.sum(case((scope.links, 1), else_=0))
    name = func.max(POSTS.c.author_name)
    stmt = scope.select(scope.part, POSTS.c.author, func.count(), spam, linked, name)
    found, skip = Authors(), frozenset(not_audience)
    first: dict[str, str] = {}  # account -> the first way its author was seen written
    everyone: set[str] = set()
    active: defaultdict[str, list[tuple[int, str, str | None]]] = defaultdict(list)
    for part, author, n, spams, links, written in conn.execute(
        stmt.group_by(scope.part, POSTS.c.author)
    ):
        account = accounts[author]
        found.people[part] += 1
        found.posted[account] += n
        if spams:
            found.spam[account] += spams
        if links:
            found.linked[account] += links
        if first.setdefault(account, author) != author:
            found.aliased.update((author, first[account]))
        everyone.add(author)
        if account in skip:
            continue
        listed = active[part]
        listed.append((n, author, written))
        if len(listed) == 2 * CANDIDATES:
            listed[:] = _most_active(listed)
            found.crowded.add(part)
    found.everyone = len(everyone)
    found.crowded.update(part for part, listed in active.items() if len(listed) > CANDIDATES)
    found.active = {part: _most_active(listed) for part, listed in active.items()}
    return found


def _most_active(listed: list[tuple[int, str, str | None]]) -> list[tuple[int, str, str | None]]:
    """The CANDIDATES authors with the most posts, the first in code-point order on a tie."""
    return sorted(listed, key=lambda a: (-a[0], a[1]))[:CANDIDATES]


def context(
    conn: Connection, scope: Scope, accounts: Accounts, who: Authors, bots: Iterable[str] = ()
) -> Context:
    """Copies and spam, as reports/editorial.py decides them over posts oldest first (by time,
    then key): a post is a copy when it reposts another, or says the same words (`copy_key`) as an
    earlier post that is no copy; a post is spam on its own (stored), or by its account saying the
    same words or sharing the same link three times or more; an account is spam when at least
    three of its posts, and at least half, are spam, or when the curation file calls it a bot."""
    ctx = Context()
    _copies(conn, scope, ctx)
    repeated = [*_repeated_words(conn, scope, accounts, who.aliased),
                *_repeated_links(conn, scope, accounts, who)]  # fmt: skip
    spammed = Counter(who.spam)
    for pk, account in dict(repeated).items():
        ctx.spam_posts.add(pk)
        spammed[account] += 1
    posted = who.posted
    ctx.spam_accounts = {
        a: posted[a] for a, n in spammed.items() if n >= REPEATS and 2 * n >= posted[a]
    }
    ctx.spam_accounts.update({bot: posted[bot] for bot in bots if posted[bot]})
    return ctx


def _copies(conn: Connection, scope: Scope, ctx: Context) -> None:
    """Text copies and every copy's original, in one window over the posts by copy key, oldest
    first with reposts last, so the first of each key is its original when it has one: a later
    post that is no repost is its copy; a repost counts for the post it names when that is an
    earlier original, else for the earlier original of its words."""
    key, reposted = ANALYSIS.c.copy_key, scope.reposted
    posts = scope.select(
        POSTS.c.id, POSTS.c.created_at, reposted.label("reposted"), POSTS.c.platform,
        POSTS.c.post_id, POSTS.c.repost_of, key,
    ).where(or_(key.is_not(None), reposted)).subquery()  # fmt: skip
    p = posts.c  # the window over plain columns: one sort for its values, not one each
    order = {"partition_by": p.copy_key, "order_by": (p.reposted, p.created_at, p.id)}
    first = lambda column: func.first_value(column).over(**order)  # noqa: E731
    keyed = select(
        posts, first(p.id).label("original"), first(p.created_at).label("original_at"),
        first(p.reposted).label("original_reposts"), first(p.platform).label("original_on"),
        first(p.post_id).label("original_id"),
    ).subquery()  # fmt: skip
    k = keyed.c
    earlier = or_(k.original_at < k.created_at,
                  and_(k.original_at == k.created_at, k.original < k.id))  # fmt: skip
    stmt = select(k.id, k.created_at, k.reposted, k.platform, k.repost_of, k.original,
                  and_(k.copy_key.is_not(None), not_(k.original_reposts), earlier),
                  k.original_on, k.original_id)  # fmt: skip
    copies = conn.execute(
        stmt.where(or_(k.reposted, k.id != k.original)).order_by(k.reposted)
    )  # text copies first: a repost's target may be one
    reposts = []  # the reposts of a post other than their words' original, looked up at once
    for pk, at, is_repost, platform, of, original, after_original, *words_original in copies:
        if not is_repost:
            ctx.text_copies.add(pk)
            ctx.reach[original] += 1
        elif of and [platform, of] != words_original:
            reposts.append((pk, at, platform, of, original, after_original))
        elif after_original:  # naming its words' original, or nothing
            ctx.reach[original] += 1
    named = _named(conn, scope, {(platform, of) for _, _, platform, of, *_ in reposts if of})
    for pk, at, platform, of, original, after_original in reposts:
        target = named.get((platform, of)) if of else None
        if target and target[2] and target[1] not in ctx.text_copies and target[:2] < (at, pk):
            ctx.reach[target[1]] += 1
        elif after_original:
            ctx.reach[original] += 1


def _named(
    conn: Connection, scope: Scope, posts: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[Any, int, bool]]:
    """(platform, post id) -> (time, pk, no repost itself) of those of `posts` that are visible,
    looked up by the (platform, post id) index, a platform at a time."""
    ids: defaultdict[str, list[str]] = defaultdict(list)
    for platform, post_id in sorted(posts):
        ids[platform].append(post_id)
    found = {}
    for platform, post_ids in ids.items():
        for chunk in _chunks(post_ids):
            stmt = scope.select(POSTS.c.post_id, POSTS.c.created_at, POSTS.c.id,
                                not_(scope.reposted)).where(
                POSTS.c.platform == platform, POSTS.c.post_id.in_(chunk)
            )  # fmt: skip
            found.update({(platform, r[0]): (r[1], r[2], bool(r[3])) for r in conn.execute(stmt)})
    return found


def _repeated_words(
    conn: Connection, scope: Scope, accounts: Accounts, aliased: set[str]
) -> Iterator[tuple[int, str]]:
    """(pk, account) of posts, not spam on their own, whose account said their words three times
    or more: counted by SQL per author, summed here over an account's ways of writing it."""
    key = ANALYSIS.c.copy_key
    counted = scope.select(POSTS.c.author, key, func.count()).where(key.is_not(None))
    counted = counted.group_by(key, POSTS.c.author)  # by author first, SQLite reads its index
    said: Counter[tuple[str, str]] = Counter()
    authors: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    repeated = conn.execute(counted.having(func.count() >= REPEATS))
    found = [row for row in repeated if row[0] not in aliased]  # theirs: every group, below
    for chunk in _chunks(sorted(aliased)):
        found += conn.execute(counted.where(POSTS.c.author.in_(chunk))).all()
    for author, copy_key, n in found:
        said[(accounts[author], copy_key)] += n
        authors[(accounts[author], copy_key)].add(author)
    pairs = {
        (author, k) for (a, k), n in said.items() if n >= REPEATS for author in authors[(a, k)]
    }
    for chunk in _chunks(sorted({author for author, _ in pairs})):  # by the author index
        stmt = scope.select(POSTS.c.id, POSTS.c.author, key).where(
            POSTS.c.author.in_(chunk), not_(ANALYSIS.c.spam.is_(True))
        )
        for pk, author, copy_key in conn.execute(stmt):
            if (author, copy_key) in pairs:
                yield pk, accounts[author]


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    return (values[i : i + CHUNK] for i in range(0, len(values), CHUNK))


def _repeated_links(
    conn: Connection, scope: Scope, accounts: Accounts, who: Authors
) -> Iterator[tuple[int, str]]:
    """(pk, account) of posts, not spam on their own, with a link their account shared three
    times or more (as its source gave it or its text holds it, compared alike), read one author
    at a time (in the order of `scope.account`, so an author's posts come together, and not by
    the author index, read post by post); an account's authors written more than one way,
    together at the end. An account with fewer than three posts with links is passed over."""
    stmt = scope.select(
        POSTS.c.id, POSTS.c.author, as_text(POSTS.c.links), as_text(ANALYSIS.c.links, "text_links"),
        ANALYSIS.c.spam,
    ).where(scope.links).order_by(scope.account).execution_options(yield_per=2000)  # fmt: skip
    later: list[tuple[int, str, list[str], Any]] = []
    for author, rows in groupby(conn.execute(stmt), key=lambda r: r.author):
        if who.linked[accounts[author]] < REPEATS:
            continue
        posts = [(r.id, accounts[author], _links(r.links, r.text_links), r.spam) for r in rows]
        if author in who.aliased:
            later.extend(posts)
        else:
            yield from _sharing(posts)
    by_account = sorted(later, key=lambda p: p[1])
    for _, together in groupby(by_account, key=lambda p: p[1]):
        yield from _sharing(list(together))


def _links(given: str | None, found: str | None) -> list[str]:
    """A post's links as its source gave them and as its text holds them, compared alike."""
    links = {u.rstrip("/").casefold() for u in decoded(given) if isinstance(u, str)}
    return sorted(links.union(decoded(found)))


def _sharing(posts: list[tuple[int, str, list[str], Any]]) -> Iterator[tuple[int, str]]:
    """Of one account's posts with links, those sharing a link it shared three times or more."""
    shared = Counter(link for _, _, links, _ in posts for link in links)
    if max(shared.values(), default=0) < REPEATS:
        return
    for pk, account, links, spam in posts:
        if not spam and any(shared[link] >= REPEATS for link in links):
            yield pk, account
