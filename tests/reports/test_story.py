"""reports/story.py on real SQLite files: what each part of the story holds, and what it never shows."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from aggregator.config import PrivacyConfig
from aggregator.pipeline import analyse, tag
from connectors.base import Page, Post
from reports.render import story_dict
from reports.story import build_story
from storage.models import Assignment, PostRow
from storage.queries import finish_run, record_outcome, save_page, start_run, utcnow

_ids = itertools.count(1)


def post(config, session, minutes, text, author="ana@example.org", **kw):
    """A post `minutes` after `session` starts (negative: before it)."""
    n = next(_ids)
    when = config.session(session).start + timedelta(minutes=minutes)
    kw.setdefault("url", f"https://example.org/@x/{n}")
    return Post("mastodon", f"s{n}", when, author, text, **kw)


def store(engine, config, *posts):
    save_page(engine, "test", Page(list(posts)))
    tag(engine, config)
    analyse(engine)


def set_flag(engine, post_id, **values):
    posts, assignments = PostRow.__table__, Assignment.__table__
    with engine.begin() as conn:
        pk = conn.execute(select(posts.c.id).where(posts.c.post_id == post_id)).scalar_one()
        conn.execute(update(assignments).where(assignments.c.post_pk == pk).values(**values))


def part(story, part_id):
    return next(p for p in story.parts if p.id == part_id)


def test_case_11_deleted_excluded_and_opted_out_posts_never_appear(engine, config):
    shown = [post(config, "session-1", m, f"Useful point about carers number {m}", author=f"u{m}@example.org")
             for m in (5, 6)]  # fmt: skip
    hidden = {
        "deleted": post(config, "session-1", 7, "HIDDEN-DELETED will we fund it?", author="del@example.org",
                        likes=500, deleted=True),
        "excluded": post(config, "session-1", 8, "HIDDEN-EXCLUDED we will fund it?", author="exc@example.org",
                         likes=500, links=["https://hidden.example/excluded"]),
        "opted": post(config, "session-1", 9, "HIDDEN-OPTED let's fund it?", author="@Gone@Example.org",
                      author_name="Gwen Gone", likes=500,
                      media=[{"url": "https://hidden.example/a.png", "alt": "HIDDEN-ALT"}]),
    }  # fmt: skip
    mention = post(config, "session-1", 10, "Thanks @gone@example.org and Gwen Gone for the carers work",
                   author="u10@example.org", likes=50)  # fmt: skip
    store(engine, config, *shown, *hidden.values(), mention)
    set_flag(engine, hidden["excluded"].id, excluded=True)
    config = replace(config, privacy=PrivacyConfig(opt_out=("gone@example.org",)))

    story = build_story(engine, config)
    everything = json.dumps(story_dict(story))
    for marker in ("hidden", "del@example.org", "exc@example.org", "gone@", "gwen"):
        assert marker not in everything.lower()
    session = part(story, "session-1")
    counts = (session.posts, session.people, story.overview.posts, story.overview.people)
    assert counts == (3, 3, 3, 3)
    assert any(
        "for the carers work" in h.text for h in session.highlights
    )  # shown, minus the names
    assert session.questions_total == 0 and session.actions_total == 0
    authors = {c.author for c in session.contributors}
    assert authors == {"u5@example.org", "u6@example.org", "u10@example.org"}
    assert ("Not shown: 1 deleted post, 1 excluded by the organisers and 1 from people who opted out."
            in story.overview.quality)  # fmt: skip


def test_pinned_posts_come_first_then_the_most_engaged_without_near_duplicates(engine, config):
    popular = [
        post(config, "session-2", 1, "Great discussion, patients as equal partners #CoPro16", likes=90,
             author="a@example.org"),
        post(config, "session-2", 2, "Great discussion, patients as equal partners! #CoPro16 #EveryoneIncluded",
             likes=80, author="b@example.org"),
        post(config, "session-2", 3, "Carers need time and money, not leaflets", likes=50,
             author="c@example.org"),
        post(config, "session-2", 4, "Agreed!", likes=400, author="d@example.org"),  # says nothing
        post(config, "session-2", 5, "Carers need time and money", repost_of="x1", likes=300,
             author="e@example.org"),
    ]  # fmt: skip
    quiet = post(config, "session-2", 9, "The quiet post an organiser chose to pin")
    store(engine, config, *popular, quiet)
    set_flag(engine, quiet.id, highlight=True)

    highlights = part(build_story(engine, config), "session-2").highlights
    assert highlights[0].post_id == quiet.id and highlights[0].pinned
    assert [h.post_id for h in highlights[1:]] == [popular[0].id, popular[2].id]
    assert popular[1].id not in {h.post_id for h in highlights}  # the same words as the first
    assert popular[4].id not in {h.post_id for h in highlights}  # reposts repeat someone else
    assert popular[3].id not in {h.post_id for h in highlights}  # 'Agreed!' is low content


def test_counts_peak_minute_and_narrative_come_from_the_data(engine, config):
    posts = [post(config, "session-1", 25, f"Point {i} on community health", author=f"p{i}@example.org")
             for i in range(3)]  # fmt: skip
    posts += [post(config, "session-1", 40, "Another view on community health", author="p0@example.org"),
              post(config, "session-1", 55, "And one more about community health", author="p9@example.org")]  # fmt: skip
    store(engine, config, *posts)
    session = part(build_story(engine, config), "session-1")
    assert (session.posts, session.people) == (5, 4)
    assert session.activity.peak == "13:25" and session.activity.peak_count == 3
    assert "5 posts" in session.narrative and "13:25" in session.narrative
    assert sum(session.activity.counts) == 5


def test_a_session_without_posts_says_so(engine, config):
    store(engine, config, post(config, "session-1", 5, "Only session 1 has posts"))
    story = build_story(engine, config)
    empty = part(story, "session-7")
    assert empty.posts == 0 and empty.narrative == "No posts were collected for this session."
    assert empty.highlights == [] and empty.themes == []
    assert [p.id for p in story.parts] == ["before", *(s.id for s in config.sessions), "after"]


def test_posts_outside_every_session_are_the_build_up_and_the_reflections(engine, config):
    store(
        engine, config,
        post(config, "panel-opening", -60 * 24 * 2, "Looking forward to Monday's event"),
        post(config, "panel-opening", -60 * 24 * 2 + 5, "Registered for Monday", author="b@example.org"),
        post(config, "panel-closing", 60 * 24, "Recordings of yesterday are worth a watch"),
    )  # fmt: skip
    story = build_story(engine, config)
    before, after = part(story, "before"), part(story, "after")
    assert (before.posts, after.posts) == (2, 1)
    assert before.narrative.startswith("The build-up brought 2 posts from 2 people")
    assert after.narrative.startswith("Just one post came in after the event")
    assert before.activity.peak_unit == "hour" and before.activity.peak == "12:00"


def test_every_post_shown_links_to_its_original_with_author_and_local_time(engine, config):
    store(engine, config, post(config, "session-1", 25, "Community health matters to everyone here",
                               author="ana@example.org", author_name="Ana Example", likes=3))  # fmt: skip
    new_york = replace(config, event=replace(config.event, timezone=ZoneInfo("America/New_York")))
    shown = part(build_story(engine, new_york), "session-1").highlights[0]
    assert shown.url.startswith("https://example.org/@x/")
    assert (shown.author, shown.author_name, shown.platform) == (
        "ana@example.org",
        "Ana Example",
        "mastodon",
    )
    assert shown.created_at.utcoffset() == timedelta(hours=-5) and shown.when == "08:25"


def test_organisers_notes_and_the_programme_go_with_their_session(engine, config):
    store(engine, config, post(config, "session-3", 1, "Leg Club stories were moving"))
    story = build_story(
        engine, config, notes={"session-3": "We ran out of chairs!", "after": "Thanks all"}
    )
    session = part(story, "session-3")
    assert session.note == "We ran out of chairs!" and part(story, "after").note == "Thanks all"
    assert session.speakers and session.description.startswith("Co-designed by Experts")
    assert session.time_label == "15:00–16:00"


def test_themes_questions_pledges_links_and_media(engine, config):
    themed = [post(config, "session-2", m, f"Social prescribing works, says speaker {m}", author=f"t{m}@example.org")
              for m in range(1, 6)]  # fmt: skip
    other = [post(config, "session-4", m, f"Families lead change, point {m}", author=f"o{m}@example.org")
             for m in range(1, 6)]  # fmt: skip
    extra = [
        post(config, "session-2", 10, "How do we fund social prescribing?", links=["https://example.org/report"]),
        post(config, "session-2", 11, "We will start a link worker pilot", links=["https://example.org/report"],
             media=[{"url": "https://example.org/slide.png", "type": "image", "alt": "A slide about link workers"}]),
    ]  # fmt: skip
    store(engine, config, *themed, *other, *extra)
    session = part(build_story(engine, config), "session-2")
    assert "social prescribing" in [t.label.lower() for t in session.themes]
    assert session.questions_total == 1 and session.questions[0].text.startswith("How do we fund")
    assert session.actions_total == 1 and "link worker pilot" in session.actions[0].text
    assert [(t.label, t.count) for t in session.links] == [("https://example.org/report", 2)]
    assert session.media_total == 1 and session.media[0].alt == "A slide about link workers"
    assert (
        "social prescribing" in session.narrative.lower()
        and "one question" in session.narrative.lower()
    )


def test_data_quality_names_sources_failures_and_gaps_from_the_run_log(engine, config):
    sources = tuple(replace(s, enabled=True) if s.name == "mastodon" else s for s in config.sources)
    config = replace(config, sources=sources)
    run = start_run(engine, "collect")
    now = utcnow()
    record_outcome(
        engine,
        run,
        {
            "source": "mastodon",
            "status": "failed",
            "started_at": now,
            "finished_at": now,
            "warnings": [],
            "error": "https://mastodon.social needs a token (set AGGREGATOR_MASTODON_TOKEN)",
        },
    )
    record_outcome(engine, run, {"source": "example", "status": "ok", "new_posts": 1, "started_at": now,
                                 "finished_at": now, "warnings": ["gap: the saved cursor is gone (reset)"]})  # fmt: skip
    finish_run(engine, run, "failed", "failed: mastodon")
    store(engine, config, post(config, "session-1", 1, "A post"))
    quality = " ".join(build_story(engine, config).overview.quality)
    assert "mastodon failed on its latest run" in quality and "AGGREGATOR_MASTODON_TOKEN" in quality
    assert "example: gap: the saved cursor is gone" in quality
    assert "last collected" in quality and "bluesky has not been collected yet" not in quality
    assert "test (1 post, imported)" in quality


def test_untagged_posts_are_counted_in_the_data_quality_line(engine, config):
    save_page(engine, "test", Page([post(config, "session-1", 1, "Not tagged yet")]))
    analyse(engine)
    quality = build_story(engine, config).overview.quality
    assert "1 posts are not matched to a session yet (run aggregator tag)." in quality or any(
        "not matched to a session" in line for line in quality
    )


def test_a_theme_never_names_someone_who_opted_out(engine, config):
    posts = [post(config, "session-2", m, f"Gwen Lowe spoke so well about carers {m}", author=f"g{m}@example.org")
             for m in range(1, 5)]  # fmt: skip
    posts += [post(config, "session-4", m, f"Families lead change, point {m}", author=f"f{m}@example.org")
              for m in range(1, 5)]  # fmt: skip
    posts.append(
        post(config, "session-4", 30, "Hello", author="lowe@example.org", author_name="Gwen Lowe")
    )
    store(engine, config, *posts)
    labels = lambda story: [t.label.lower() for t in part(story, "session-2").themes]  # noqa: E731
    assert any("gwen" in t for t in labels(build_story(engine, config)))
    opted = replace(config, privacy=PrivacyConfig(opt_out=("lowe@example.org",)))
    themes = labels(build_story(engine, opted))
    assert themes and not [t for t in themes if "gwen" in t or "lowe" in t]
