"""Case 41: an older copy of a post never undoes its edit, whatever order the copies arrive in."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from connectors.base import Page, Post
from storage.models import PostRow
from storage.queries import save_page
from tests.helpers import invoke

POSTS = PostRow.__table__  # type: ignore[attr-defined]
T0 = datetime(2016, 11, 28, 13, 5, tzinfo=UTC)
EDIT_1, EDIT_2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)


def original(n: int = 1, **kw) -> Post:
    post = Post(
        platform="mastodon",
        id=f"https://example.org/statuses/{n}",
        created_at=T0,
        author="user1@example.org",
        text="Coproduction is hard #CoPro16",
        html="<p>Coproduction is hard #CoPro16</p>",
        hashtags=["CoPro16"],
        lang="en",
        likes=1,
        via="example.org #CoPro16",
        raw={"content": "Coproduction is hard", "edited_at": None},
    )
    return replace(post, **kw)


def edit(n: int = 1, at: datetime = EDIT_1, **kw) -> Post:
    """The same post as edited at `at`: every content field differs from the original."""
    post = original(
        n, text=f"Coproduction is worth it (edited {at:%H:%M}) #CoPro16 #EveryoneIncluded",
        html=f"<p>Coproduction is worth it ({at:%H:%M})</p>", hashtags=["CoPro16", "EveryoneIncluded"],
        mentions=["carol@example.org"], links=["https://example.org/worth"], lang="en-GB",
        media=[{"url": "https://example.org/a.png", "type": "image", "alt": "a"}],
        author_name="User One", edited_at=at, raw={"content": "worth it", "edited_at": at.isoformat()},
    )  # fmt: skip
    return replace(post, **kw)


CONTENT = ("text", "html", "hashtags", "mentions", "links", "media", "lang", "author_name",
           "edited_at", "raw")  # fmt: skip


def stored(engine, n: int = 1):
    with engine.connect() as conn:
        return conn.execute(select(POSTS).where(POSTS.c.post_id == original(n).id)).one()


def content_of(post: Post) -> dict:
    return {k: getattr(post, k) for k in CONTENT}


def content_stored(engine, n: int = 1) -> dict:
    row = stored(engine, n)
    return {k: getattr(row, k) for k in CONTENT}


def jsonl(post: Post) -> str:
    keys = ("platform", "id", "author", "text", "url", "likes", "hashtags", "lang")
    record = {k: getattr(post, k) for k in keys}
    record["created_at"] = post.created_at.isoformat()
    if post.edited_at:
        record["edited_at"] = post.edited_at.isoformat()
    return json.dumps(record) + "\n"


def test_case_41_an_import_of_the_original_after_its_edit_keeps_the_edit(project, engine):
    def run_import(path):
        result = invoke(project, "import", str(path), "--format", "jsonl")
        assert result.exit_code == 0, result.output
        return result.output

    first, edited = project / "original.jsonl", project / "edited.jsonl"
    first.write_text(jsonl(original()), encoding="utf-8")
    edited.write_text(jsonl(edit()), encoding="utf-8")

    assert "1 new" in run_import(first)
    assert "1 updated" in run_import(edited)
    again = run_import(first)  # the older copy, re-imported

    assert "1 updated" not in again and "0 updated" in again
    row = stored(engine)
    assert (row.text, row.edited_at, row.hashtags) == (edit().text, EDIT_1, edit().hashtags)


def test_case_41_an_older_copy_from_another_source_keeps_every_content_field(engine):
    save_page(engine, "a", Page([original()]))
    save_page(engine, "b", Page([edit()]))
    saved = save_page(engine, "c", Page([original(via="other.social #CoPro16")]))

    assert (saved.new, saved.updated) == (0, 0)
    assert content_stored(engine) == content_of(edit())
    assert stored(engine).source == "a"  # the source that first found it


def test_case_41_an_earlier_edit_never_replaces_a_later_one_but_a_later_one_does(engine):
    save_page(engine, "s", Page([edit(at=EDIT_2)]))
    assert save_page(engine, "s", Page([edit(at=EDIT_1)])).updated == 0
    assert content_stored(engine) == content_of(edit(at=EDIT_2))

    later = EDIT_2 + timedelta(minutes=1)
    assert save_page(engine, "s", Page([edit(at=later)])).updated == 1
    assert content_stored(engine) == content_of(edit(at=later))


def test_case_41_the_same_edit_time_or_no_edit_at_all_lets_the_newer_copy_win(engine):
    save_page(engine, "s", Page([original()]))
    assert save_page(engine, "s", Page([original(text="seen again, changed")])).updated == 1
    assert stored(engine).text == "seen again, changed"

    save_page(engine, "s", Page([edit()]))
    same_time = edit(html="<p>rendered by another instance</p>")
    assert save_page(engine, "s", Page([same_time])).updated == 1
    assert stored(engine).html == "<p>rendered by another instance</p>"


def test_case_41_counts_still_refresh_from_an_older_copy_and_none_never_erases_them(engine):
    save_page(engine, "s", Page([edit(likes=5, reposts=2)]))
    saved = save_page(engine, "s", Page([original(likes=9, reposts=None)]))

    row = stored(engine)
    assert saved.updated == 1
    assert (row.likes, row.reposts) == (9, 2)
    assert (row.text, row.edited_at) == (edit().text, EDIT_1)


def test_case_41_within_one_page_the_original_last_does_not_undo_the_edit(engine):
    saved = save_page(engine, "s", Page([original(1), edit(1), original(1), edit(2), original(2)]))
    assert (saved.new, saved.updated) == (2, 0)
    assert content_stored(engine, 1) == content_of(edit(1))
    assert content_stored(engine, 2) == content_of(edit(2))

    save_page(engine, "s", Page([original(3)]))  # stored unedited; the page brings both copies
    assert save_page(engine, "s", Page([edit(3), original(3)])).updated == 1
    assert content_stored(engine, 3) == content_of(edit(3))


def test_case_41_a_deleted_post_stays_deleted_and_keeps_its_edit(engine):
    save_page(engine, "s", Page([edit()]))
    save_page(engine, "s", Page([original(deleted=True)]))  # the deletion comes as an old copy
    save_page(engine, "s", Page([original()]))  # and a stale cached copy after it

    row = stored(engine)
    assert row.deleted_at is not None
    assert row.text == edit().text and row.edited_at == EDIT_1


COPIES = [original(), edit(at=EDIT_1), edit(at=EDIT_2), original(text="cached, unedited")]
ARRIVALS = itertools.count(100)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.permutations(range(len(COPIES))), pages=st.integers(1, len(COPIES)))
def test_case_41_the_latest_edit_wins_in_every_arrival_order(engine, order, pages):
    n = next(ARRIVALS)  # a post of its own for each example
    copies = [replace(COPIES[i], id=original(n).id) for i in order]
    size = -(-len(copies) // pages)
    for start in range(0, len(copies), size):  # the copies split over `pages` pages
        save_page(engine, "s", Page(copies[start : start + size]))
    assert content_stored(engine, n) == content_of(replace(COPIES[2], id=original(n).id))
