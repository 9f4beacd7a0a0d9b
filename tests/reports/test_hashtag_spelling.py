"""reports/digest.py Scan: a hashtag is counted once a post whatever its case, and the story writes
it as most posts spelt it (on a tie, the first in code-point order), not as the hash seed or the
order of the posts happens to give. On real SQLite files, through the report's own reads."""

from __future__ import annotations

from datetime import timedelta

from aggregator.pipeline import analyse, tag
from connectors.base import Page, Post
from reports.digest import Scan, report_data
from reports.story import build_story
from storage.queries import save_page


def post(config, n: int, hashtags: list[str]) -> Post:
    """Post `n`, by its own author, `n` minutes into the first session, writing `hashtags`."""
    when = config.sessions[0].start + timedelta(minutes=n)
    text = f"Point {n} about carers " + " ".join(f"#{h}" for h in hashtags)
    return Post("mastodon", f"h{n}", when, f"u{n}@example.org", text,
                url=f"https://example.org/@u{n}/{n}", hashtags=hashtags)  # fmt: skip


def scan(engine, config, tags: list[list[str]]) -> Scan:
    save_page(engine, "test", Page([post(config, n, h) for n, h in enumerate(tags)]))
    tag(engine, config)
    analyse(engine)
    with engine.connect() as conn:
        return report_data(engine, conn, config, {}).scan


def test_a_post_writing_one_hashtag_in_two_cases_counts_it_once(engine, config):
    found = scan(engine, config, [["CoPro16", "copro16", "Carers"], ["carers"], ["NHS"]])
    assert found.hashtags["#copro16"] == 1
    assert found.hashtags["#carers"] == 2
    assert found.hashtags["#nhs"] == 1


def test_the_spelling_most_posts_wrote_is_shown_whatever_came_first(engine, config):
    # the first post (and the one writing both) spells it one way; more posts spell it another
    tags = [["nhscarers"], ["NHSCarers", "nhscarers"], ["NHSCarers"], ["NHSCarers"]]
    found = scan(engine, config, tags)
    assert found.hashtags["#nhscarers"] == 4
    assert found.hashtag_forms["#nhscarers"] == "#NHSCarers"


def test_a_tie_is_broken_by_code_point_order_not_by_which_came_first(engine, config):
    found = scan(engine, config, [["zeroWaste"], ["ZeroWaste"]])
    assert found.hashtags["#zerowaste"] == 2
    assert found.hashtag_forms["#zerowaste"] == "#ZeroWaste"  # 'Z' before 'z'


def test_the_story_shows_the_hashtag_once_with_its_spelling_and_count(engine, config):
    save_page(engine, "test", Page([post(config, n, tags) for n, tags in enumerate(
        [["nhsCarers", "NHSCarers"], ["NHSCarers"], ["nhscarers"], ["NHSCarers"]])]))  # fmt: skip
    tag(engine, config)
    analyse(engine)
    story = build_story(engine, config)
    shown = {
        t.label: t.count for t in story.overview.hashtags if t.label.casefold() == "#nhscarers"
    }
    assert shown == {"#NHSCarers": 4}
