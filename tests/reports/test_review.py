"""The organisers' review page (issue 11 Deliver 6, issue 12): every candidate with the curation entry
that pins, excludes, moves or mutes it; flagged disclosures with their kind and reason; and a changed
curation file changing the story on the next run."""

from __future__ import annotations

import html
import re
import tomllib
from dataclasses import replace

import pytest

from aggregator.curation import load_curation
from aggregator.pipeline import tag
from reports.review import build_review
from reports.story import tell
from storage.db import open_database
from tests.storyhelp import post, project_copy, store, write

DISCLOSURE = "My son was diagnosed with autism at four and CAMHS failed him completely"


@pytest.fixture
def event(tmp_path):
    """A project with an (empty) curation file and a session of posts: ordinary ones, a question,
    a technical problem, a flagged disclosure, and a spammer."""
    config = project_copy(tmp_path)
    config = replace(config, curation=tmp_path / "curation.toml")
    (tmp_path / "curation.toml").write_text("")
    posts = {
        "disclosed": post(config, "session-4", 1, DISCLOSURE, author="parent@example.org", likes=900),
        "best": post(config, "session-4", 2, "Improve Care Now puts families at the heart of research",
                     author="best@example.org", likes=80),
        "other": post(config, "session-4", 3, "Michael Seres on innovating from a patient's experience",
                      author="other@example.org", likes=40),
        "asked": post(config, "session-4", 4, "How do other trusts pay patient partners?",
                      author="q@example.org", likes=5),
        "echo": post(config, "session-4", 5, "Can anyone else hear an echo on the webex?",
                     author="t@example.org"),
        "hostile": post(config, "session-4", 6, "<script>alert(1)</script> families lead the research",
                        author="h@example.org", likes=20),
    }  # fmt: skip
    spam = [post(config, "session-4", 10 + n, f"Grow your followers now https://spam.example/x {n}",
                 author="growth@example.com") for n in range(3)]  # fmt: skip
    engine = open_database(config.database_url)
    store(engine, config, *posts.values(), *spam)
    yield config, engine, posts
    engine.dispose()


def test_the_review_page_is_written_beside_the_config_never_with_the_story(event):
    config, engine, _ = event
    out = write(engine, config, review=True)
    page = out.files["review"]
    assert page == config.base_dir / "review.html" and page.parent != out.files["html"].parent
    assert not (out.files["html"].parent / "review.html").exists()
    assert "review" not in write(engine, config).files  # only when asked for


def test_it_lists_every_candidate_with_its_post_id_and_curation_entries(event):
    config, engine, posts = event
    out = write(engine, config, review=True)
    page = out.files["review"].read_text()
    text = html.unescape(page)
    for name in ("best", "other", "asked", "echo", "disclosed"):
        assert f"id {posts[name].id}" in re.sub(r"<[^>]+>", "", text), name
    shown = out.part("session-4")["highlights"][0]["post_id"]
    assert f'[[exclude]]\nid = "{shown}"\nplatform = "mastodon"' in text
    assert f'[[highlight]]\nid = "{posts["disclosed"].id}"\nplatform = "mastodon"' in text
    assert (
        f'[[assign]]\nid = "{posts["asked"].id}"\nplatform = "mastodon"\nsession = "session-4"'
        in text
    )
    assert '[[mute]]\naccount = "parent@example.org"' in text
    assert (
        "family: family (&#39;My son&#39;) + condition term" in page
        or "family: family ('My son')" in text
    )
    assert "growth@example.com" in text and "most of its posts are spam" in text


def test_every_entry_on_the_page_is_one_the_curation_file_accepts(event):
    config, engine, _ = event
    told = tell(engine, config, load_curation(config))
    review = build_review(told, config)
    lines = [line for p in review.parts for cs in p.candidates.values() for c in cs
             for line in c.lines.values()]  # fmt: skip
    lines += [s[3] for s in review.spam]
    assert len(lines) > 10
    # one of each table per post or account, as organisers would paste them
    chosen = {re.sub(r"\s+", " ", line): line for line in lines}
    parsed = [tomllib.loads(line) for line in chosen.values()]
    assert all(len(p) == 1 for p in parsed)
    seen: dict[tuple[str, str], str] = {}
    for line in chosen.values():
        table = line.split("]]", 1)[0] + "]]"
        key = re.search(r'(?:id|account) = "([^"]+)"', line)[1]
        if table in ("[[exclude]]", "[[highlight]]"):
            table = "[[pin-or-exclude]]"
        seen.setdefault((table, key), line)
    (config.base_dir / "curation.toml").write_text("\n\n".join(seen.values()) + "\n")
    load_curation(config)  # raises on any entry it cannot use


def test_a_pasted_entry_changes_the_story_on_the_next_run(event):
    config, engine, posts = event
    curation = config.base_dir / "curation.toml"
    before = write(engine, config).part("session-4")
    ids = lambda part, kind="highlights": {h["post_id"] for h in part[kind]}  # noqa: E731
    shown = before["highlights"][0]["post_id"]
    assert posts["disclosed"].id not in ids(before) and posts["asked"].id in ids(
        before, "questions"
    )

    review = build_review(tell(engine, config, load_curation(config)), config)
    entries = {
        c.post.post_id: c.lines for p in review.parts for cs in p.candidates.values() for c in cs
    }
    moved = entries[posts["asked"].id]["move"].replace(
        'session = "session-4"', 'session = "session-5"'
    )
    curation.write_text("\n\n".join([
        entries[posts["disclosed"].id]["pin"], entries[shown]["exclude"], moved,
        entries[posts["echo"].id]["mute"],
    ]) + "\n")  # fmt: skip
    tag(engine, config)  # the next run: aggregator run tags, then reports
    after = write(engine, config)
    session = after.part("session-4")
    assert posts["disclosed"].id in ids(session) and shown not in ids(session)
    assert ids(after.part("session-5"), "questions") == {posts["asked"].id}
    assert "echo on the webex" not in after.everything  # its account is muted
    assert session["posts"] == before["posts"] - 3  # excluded, moved and muted


def test_the_review_page_is_as_safe_as_the_story(event):
    config, engine, _ = event
    page = write(engine, config, review=True).files["review"].read_text()
    assert "default-src 'none'" in page and 'name="robots" content="noindex, nofollow"' in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_disclosures_reason_never_says_more_than_the_post_shows(tmp_path):
    config = project_copy(tmp_path)
    long = "Co-production needs time, patience and honest conversations about power. " * 5
    late = post(config, "session-2", 2, long + DISCLOSURE, author="late@example.org", likes=50)
    engine = open_database(config.database_url)
    store(engine, config, late)
    review = build_review(tell(engine, config), config)
    flagged = [c for p in review.parts for c in p.candidates["disclosure"]]
    assert [c.post.post_id for c in flagged] == [late.id]
    assert flagged[0].post.cut and flagged[0].why == "family (further into the post)"
    engine.dispose()
