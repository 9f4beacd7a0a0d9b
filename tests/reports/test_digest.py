"""reports/digest.py on real SQLite files: the aggregates, the streamed scan and the posts read whole."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select, update

from aggregator.config import PrivacyConfig
from aggregator.pipeline import analyse, tag
from connectors.base import Page, Post
from reports.digest import KEEP, posts_by_id, report_data
from storage.models import Assignment, PostRow
from storage.queries import save_page

SHOW = {"contributors": 2}


def post(config, n, text, author="ana@example.org", **kw):
    """Post number `n`, `n` minutes into the first session."""
    when = config.sessions[0].start + timedelta(minutes=n)
    return Post("mastodon", f"d{n}", when, author, text, url=f"https://example.org/@x/{n}", **kw)


def read(engine, config):
    with engine.connect() as conn:
        return report_data(engine, conn, config, SHOW)


def test_hidden_posts_are_counted_by_reason_and_never_in_the_totals(engine, config):
    first = config.sessions[0].id
    posts = [
        post(config, n, f"Carers need time, point {n}", author=f"u{n}@example.org")
        for n in range(4)
    ]
    posts += [
        post(config, 4, "Deleted", deleted=True),
        post(config, 5, "Gone", author="gone@example.org"),
    ]
    save_page(engine, "test", Page(posts))
    tag(engine, config)
    analyse(engine)
    rows, assignments = PostRow.__table__, Assignment.__table__
    with engine.begin() as conn:
        pk = conn.execute(select(rows.c.id).where(rows.c.post_id == "d0")).scalar_one()
        conn.execute(update(assignments).where(assignments.c.post_pk == pk).values(excluded=True))
    save_page(engine, "test", Page([post(config, 6, "Not tagged yet", author="late@example.org")]))
    config = replace(config, privacy=PrivacyConfig(opt_out=("gone@example.org",)))

    data = read(engine, config)
    assert data.hidden == {"deleted": 1, "excluded": 1, "opted_out": 1, "muted": 0, "undated": 0}
    assert data.untagged == 1
    assert data.totals[first].posts == 3 and data.people == 4  # three tagged, one waiting
    assert [c[0] for c in data.contributors[first]] == ["u1@example.org", "u2@example.org"]
    assert sum(data.platforms.values()) == 4


def test_the_scan_keeps_the_best_candidates_and_only_they_are_read_whole(engine, config):
    first = config.sessions[0].id
    many = KEEP + 10
    posts = [post(config, n, f"Social prescribing link workers idea {n}", author=f"p{n}@example.org",
                  likes=n) for n in range(many)]  # fmt: skip
    save_page(engine, "test", Page(posts))
    tag(engine, config)
    analyse(engine)

    data = read(engine, config)
    best = data.scan.ranked("best", first)
    assert len(best) == KEEP
    with engine.connect() as conn:
        shown = {r.id: r for r in posts_by_id(conn, data.scan.wanted())}
    assert set(shown) == set(best)
    likes = [shown[i].likes for i in best]
    assert likes == sorted(likes, reverse=True) and likes[0] == many - 1


def test_posts_are_read_whole_across_batches_of_ids(engine, config):
    posts = [post(config, n, f"Post {n}", author=f"b{n}@example.org") for n in range(450)]
    save_page(engine, "test", Page(posts))
    with engine.connect() as conn:
        ids = list(conn.execute(select(PostRow.__table__.c.id)).scalars())
        rows = posts_by_id(conn, ids)
    assert sorted(r.id for r in rows) == sorted(ids) and len(ids) == 450
    assert all(r.pinned is None for r in rows)  # not tagged: no assignment to pin it
