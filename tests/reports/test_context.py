"""reports/context.py decides copies and spam over the whole event in SQL (windows, groups, one
author's links at a time) as the editorial rules say, oldest post first. Checked against the rules
written out the plain way (every post in order, every count in memory) on seeded streams full of
copies, reposts of earlier and later posts, repeated words and links, an account written three
ways and hidden posts, on SQLite and (with AGGREGATOR_TEST_POSTGRES_URL) PostgreSQL; and the scan's
bounded candidate lists against unbounded ones."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from aggregator.pipeline import analyse, tag
from aggregator.scrubber import account_key
from connectors.base import Page, Post
from reports import digest
from reports.context import REPEATS, authors, context
from reports.digest import Voices, report_data
from reports.scope import Accounts, Scope, as_text, decoded
from storage.models import Assignment, PostAnalysis, PostRow
from storage.queries import save_page
from tests.helpers import postgres_engine

POSTS, ANALYSIS, ASSIGN = PostRow.__table__, PostAnalysis.__table__, Assignment.__table__
SAYINGS = [
    "Carers need time and money, not leaflets",
    "Start with what people can do",
    "Peer support made the difference for our family",
    "Co-production means sharing power from the start",
    "Grow your followers fast, 50% off today",  # spam on its own: a pitch with a link
]
LINKS = [
    "https://a.example/x",
    "https://A.example/x/",
    "https://b.example/y",
    "https://c.example/z",
]
# one account written three ways, and others written one way each
AUTHORS = ["Ana@example.org", "ana@example.org", "@ana@example.org",
           *(f"u{n}@example.org" for n in range(6))]  # fmt: skip


def stream(config, seed: int, size: int = 160) -> list[Post]:
    """Posts in a random order of arrival, some at the same second, some hidden."""
    rng = random.Random(seed)
    start = config.sessions[0].start
    posts: list[Post] = []
    for n in range(size):
        text = rng.choice(SAYINGS) + rng.choice(["", "!", " #CoPro16"])
        repost_of = None
        if posts and rng.random() < 0.25:  # a repost of an earlier post, a later one, or none here
            target = rng.choice(posts)
            repost_of = rng.choice([target.id, f"p{n + 5}", "gone"])
            text = target.text if rng.random() < 0.8 else text
        if rng.random() < 0.1:
            text = f"RT @{rng.choice(AUTHORS).lstrip('@')}: {text}"
        links = rng.sample(LINKS, rng.choice([0, 0, 1, 2]))
        if "%" in text or rng.random() < 0.2:
            text += " " + rng.choice(LINKS)
        posts.append(Post(
            rng.choice(["mastodon", "x"]), f"p{n}", start + timedelta(seconds=rng.randrange(40)),
            rng.choice(AUTHORS), text, url=f"https://example.org/{n}", repost_of=repost_of,
            links=links, deleted=rng.random() < 0.05,
        ))  # fmt: skip
    return posts


def plainly(engine, config, bots=()) -> dict[str, Any]:
    """The editorial rules over every visible post in order, everything held in memory."""
    scope = Scope(config, ())
    stmt = scope.select(
        POSTS.c.id, POSTS.c.platform, POSTS.c.post_id, POSTS.c.author, POSTS.c.repost_of,
        as_text(POSTS.c.links), as_text(ANALYSIS.c.links, "text_links"), ANALYSIS.c.copy_key,
        ANALYSIS.c.repost, ANALYSIS.c.spam,
    ).order_by(POSTS.c.created_at, POSTS.c.id)  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    copies, reach, first, by_id = set(), Counter(), {}, {}
    said, shared, posted, spammed = Counter(), Counter(), Counter(), Counter()
    for r in rows:
        original = by_id.get((r.platform, r.repost_of)) or first.get(r.copy_key)
        if original is not None or r.repost_of or r.repost:
            copies.add(r.id)
            if original is not None:
                reach[original] += 1
        else:
            by_id[(r.platform, r.post_id)] = r.id
            if r.copy_key:
                first[r.copy_key] = r.id
        account = account_key(r.author)
        said[(account, r.copy_key)] += bool(r.copy_key)
        shared.update((account, link) for link in links_of(r))
    spam = set()
    for r in rows:
        account = account_key(r.author)
        repeated = (r.copy_key and said[(account, r.copy_key)] >= REPEATS) or any(
            shared[(account, link)] >= REPEATS for link in links_of(r)
        )
        if r.spam or repeated:
            spam.add(r.id)
        posted[account] += 1
        spammed[account] += r.id in spam
    accounts = {a: posted[a] for a, n in spammed.items() if n >= REPEATS and 2 * n >= posted[a]}
    accounts.update({bot: posted[bot] for bot in bots if posted[bot]})
    reposts = {r.id for r in rows if r.repost_of or r.repost}
    return {
        "text_copies": copies - reposts, "reach": reach, "spam_accounts": accounts,
        "spam_posts": {r.id for r in rows if r.id in spam and not r.spam},
    }  # fmt: skip


def links_of(row) -> set[str]:
    given = {u.rstrip("/").casefold() for u in decoded(row.links)}
    return given | set(decoded(row.text_links))


def decided(engine, config, bots=()) -> dict[str, Any]:
    scope, accounts = Scope(config, ()), Accounts()
    with engine.connect() as conn:
        ctx = context(conn, scope, accounts, authors(conn, scope, accounts), bots)
    return {"text_copies": ctx.text_copies, "reach": ctx.reach, "spam_posts": ctx.spam_posts,
            "spam_accounts": ctx.spam_accounts}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, engine):
    """The test's SQLite file, or a new PostgreSQL database when a server is named."""
    if request.param == "sqlite":
        yield engine
        return
    with postgres_engine("set AGGREGATOR_TEST_POSTGRES_URL to run it on PostgreSQL") as made:
        yield made


@pytest.mark.parametrize("seed", range(6))
def test_copies_and_spam_are_decided_as_the_rules_say_in_order(database, config, seed):
    engine = database
    save_page(engine, "test", Page(stream(config, seed)))
    analyse(engine)
    expected = plainly(engine, config, bots=["u5@example.org"])
    assert expected["text_copies"] and expected["reach"]  # the stream holds what is tested
    assert decided(engine, config, bots=["u5@example.org"]) == expected


def test_an_account_written_three_ways_repeats_itself_as_one(engine, config):
    start = config.sessions[0].start
    posts = [Post("mastodon", f"a{n}", start + timedelta(minutes=n), author,
                  f"Same words again {n // 3}", links=["https://a.example/x"])
             for n, author in enumerate(AUTHORS[:3] * 2)]  # fmt: skip
    save_page(engine, "test", Page(posts))
    analyse(engine)
    found = decided(engine, config)
    assert found == plainly(engine, config)
    assert found["spam_accounts"] == {"ana@example.org": 6}  # one link, six times, three ways


def test_the_scans_bounded_lists_are_those_an_unbounded_scan_keeps(engine, config, monkeypatch):
    start = config.sessions[0].start
    rng = random.Random(7)
    save_page(engine, "test", Page([
        Post("mastodon", f"b{n}", start + timedelta(seconds=n), f"v{rng.randrange(40)}@example.org",
             f"Point {n}: {rng.choice(SAYINGS[:4])} and more words {n}", likes=rng.randrange(50))
        for n in range(400)
    ]))  # fmt: skip
    tag(engine, config)
    analyse(engine)

    def lists() -> dict[str, list[int]]:
        with engine.connect() as conn:
            scan = report_data(engine, conn, config, {}, Voices()).scan
        return {part: scan.ranked("best", part) for part in ("before", config.sessions[0].id)}

    monkeypatch.setattr(digest, "PRUNE", 10**9)
    unbounded = lists()
    monkeypatch.setattr(digest, "PRUNE", 5)  # prune all the time
    assert lists() == unbounded and len(unbounded[config.sessions[0].id]) == digest.KEEP


def test_a_repost_counts_for_the_post_it_names_on_its_own_platform(engine, config):
    start = config.sessions[0].start
    save_page(engine, "test", Page([
        Post("x", "1", start, "a@example.org", "Carers need time"),
        Post("mastodon", "1", start + timedelta(minutes=1), "b@example.org", "Different words"),
        Post("x", "2", start + timedelta(minutes=2), "c@example.org", "Boosted", repost_of="1"),
    ]))  # fmt: skip
    analyse(engine)
    with engine.connect() as conn:
        pks = dict(conn.execute(select(POSTS.c.platform + POSTS.c.post_id, POSTS.c.id)).all())
    assert decided(engine, config)["reach"] == {pks["x1"]: 1}


def test_an_account_sharing_a_link_three_times_is_spam_twice_is_not(engine, config):
    start = config.sessions[0].start
    posts = [Post("mastodon", f"l{n}", start + timedelta(minutes=n), author, f"Thoughts {n}",
                  links=[link])
             for n, (author, link) in enumerate([
                 *[("thrice@example.org", "https://a.example/x")] * 3,
                 *[("twice@example.org", "https://b.example/y")] * 2,
                 ("twice@example.org", "https://c.example/z"),
             ])]  # fmt: skip
    save_page(engine, "test", Page(posts))
    analyse(engine)
    found = decided(engine, config)
    assert found == plainly(engine, config)
    with engine.connect() as conn:
        by_pk = dict(conn.execute(select(POSTS.c.id, POSTS.c.author)).all())
    assert {by_pk[pk] for pk in found["spam_posts"]} == {"thrice@example.org"}
    assert len(found["spam_posts"]) == 3


@pytest.mark.parametrize("candidates", [2, 64])
def test_contributors_are_counted_again_when_spam_accounts_fill_the_candidates(
    database, config, monkeypatch, candidates
):
    engine = database
    start = config.sessions[0].start
    posted = {"s1@example.org": 5, "s2@example.org": 4, "b@example.org": 2, "a@example.org": 2,
              "c@example.org": 1}  # fmt: skip
    save_page(engine, "test", Page([
        Post("mastodon", f"{author}-{n}", start + timedelta(minutes=n), author,
             f"Grow your followers fast, 50% off https://deal.example/{n}"
             if author.startswith("s") else f"Carers need time, point {n}")
        for author, count in posted.items() for n in range(count)
    ]))  # fmt: skip
    tag(engine, config)
    analyse(engine)
    monkeypatch.setattr("reports.context.CANDIDATES", candidates)
    with engine.connect() as conn:
        data = report_data(engine, conn, config, {"contributors": 2}, Voices())
    assert set(data.context.spam_accounts) == {"s1@example.org", "s2@example.org"}
    assert data.contributors[config.sessions[0].id] == [
        ("a@example.org", None, 2),
        ("b@example.org", None, 2),
    ]
