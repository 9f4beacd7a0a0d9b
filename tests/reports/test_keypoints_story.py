"""What the story says (issue 11): each session's paragraph opens with its key points, attributed and
citing their posts, then numbers that are never counted twice, rounded one way, with the day named
when it is not the event's; themes keep the programme's names whole."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest
from markupsafe import escape

from reports.story import build_story, percentages
from tests.storyhelp import post, store, write

QUOTE = "Start with what people can do, not what they cannot"
ECHOES = [
    "Start with what people can do: Rob Webster gets it",
    "What people can do is where to start, not what they cannot",
    "Loved that: start with what people can do",
]


def part(story, part_id):
    return next(p for p in story.parts if p.id == part_id)


def test_a_sessions_paragraph_opens_with_what_was_said_then_the_numbers(engine, config):
    quoted = post(config, "session-1", 5, f'"{QUOTE}" says Rob Webster #CoPro16', author="ana@example.org",
                  author_name="Ana Example")  # fmt: skip
    echoes = [post(config, "session-1", 10 + n, text, author=f"e{n}@example.org")
              for n, text in enumerate(ECHOES)]  # fmt: skip
    others = [post(config, "session-1", 20 + n, text, author=f"o{n}@example.org")
              for n, text in enumerate(["Leeds citizens sat on the STP board as equals",
                                        "Substance use service users co-commissioned the services",
                                        "Equal partners in Leeds, not consultees"])]  # fmt: skip
    store(engine, config, quoted, *echoes, *others)
    out = write(engine, config)
    session = out.part("session-1")

    first = session["key_points"][0]
    assert first["speaker"] == "Rob Webster" and first["sentence"] == QUOTE
    assert first["text"].startswith(f"“{QUOTE},” says Rob Webster")
    assert session["narrative"].startswith(first["text"])
    assert session["narrative"].endswith(session["summary"]) and "7 posts" in session["summary"]
    # it cites its own post first, then the posts saying the same, each by whom and when
    cites = first["cites"]
    assert (
        cites[0]["url"] == quoted.url and cites[0]["label"] == "post by @ana@example.org at 13:05"
    )
    assert {c["url"] for c in cites[1:]} <= {e.url for e in echoes} and len(cites) >= 2
    lede = re.search(
        r'<p class="lede">(.*?)</p>', out.html[out.html.index('id="session-1"') :], re.S
    )[1]
    text = escape(first["text"].removesuffix("."))
    assert lede.startswith(f'<span class="point">{text}<sup class="cites">')
    assert f'href="{quoted.url}"' in lede and "post by @ana@example.org at 13:05" in lede
    assert lede.rstrip().endswith(str(escape(session["summary"])))


def test_posts_made_after_a_session_ended_are_counted_once(engine, config):
    during = [post(config, "session-2", 10 + n, f"Care planning idea number {n} from the room",
                   author=f"d{n}@example.org") for n in range(5)]  # fmt: skip
    later = [post(config, "session-2", 70 + n, f"Thinking back on personalised care planning, part {n}",
                  author=f"l{n}@example.org", hashtags=["CoPro16"]) for n in range(3)]  # fmt: skip
    store(engine, config, *during, *later)
    session = part(build_story(engine, config), "session-2")
    assert session.posts == 8 and "8 posts" in session.summary
    assert (
        "3 of them came after it ended" in session.summary
        or "3 of these posts came" in session.summary
    )
    assert "more posts came afterwards" not in session.narrative


@pytest.mark.parametrize(("counts", "expected"), [((5, 3, 0), [63, 37, 0]), ((1, 1, 1), [34, 33, 33]),
                                                  ((2, 1, 0), [67, 33, 0]), ((0, 0, 0), [0, 0, 0])])  # fmt: skip
def test_percentages_are_whole_and_add_up_to_a_hundred(counts, expected):
    assert percentages(counts) == expected


def test_the_paragraph_and_the_tone_line_give_the_same_percentage(engine, config):
    # five positive posts of eight: 62.5%; rounding it twice, two ways, gave 62% and 63%
    texts = ["A wonderful, inspiring session", "Brilliant and hopeful ideas", "Lovely honest stories",
             "Wonderful to hear carers lead", "Great practical examples", "The room held 40 people",
             "Slides are on the website", "Papers were circulated in advance"]  # fmt: skip
    store(engine, config, *(post(config, "session-3", n, t, author=f"t{n}@example.org")
                            for n, t in enumerate(texts)))  # fmt: skip
    out = write(engine, config)
    session = out.part("session-3")
    share = session["sentiment"]["positive_percent"]
    assert (
        share == 63
        and sum(session["sentiment"][f"{k}_percent"] for k in ("positive", "neutral", "negative"))
        == 100
    )
    assert f"{share}%" in session["summary"]
    assert f"{share}% positive" in out.html and f"{share}% positive" in out.markdown


def test_days_are_named_whenever_a_time_is_not_on_the_events_day(engine, config):
    next_day = 60 * 24 + 45  # 18:45 the next day, an hour after the closing panel ended
    store(engine, config, *(post(config, "panel-closing", next_day + n, f"Reflections on yesterday, thought {n}",
                                 author=f"r{n}@example.org") for n in range(6)))  # fmt: skip
    out = write(engine, config)
    after = out.part("after")
    assert after["peak_label"] == "20:00 on Tuesday 29 November"
    assert "busiest in the hour from 20:00 on Tuesday 29 November" in after["summary"]
    assert "busiest from 20:00 on Tuesday 29 November" in out.html
    assert "the hour from 20:00 on Tuesday 29 November" in out.markdown


FRAGMENTS = ("Avon Leg", "Improve Care", "Producing Leeds", "Foundation Trust")


def test_themes_keep_the_programmes_names_whole(engine, config):
    named = {
        "session-3": "the Bradford on Avon Leg Club",
        "session-4": "Improve Care Now",
        "session-1": "Co Producing Leeds",
        "session-7": "Salisbury NHS Foundation Trust",
    }
    posts = [post(config, session, n, f"Really inspired by {name}, view {n}", author=f"{session}-{n}@example.org")
             for session, name in named.items() for n in range(4)]  # fmt: skip
    store(engine, config, *posts)
    story = build_story(engine, config)
    labels = {p.id: [t.label for t in p.themes] for p in story.parts}
    assert (
        "Bradford on Avon Leg Club" in labels["session-3"]
        and "Improve Care Now" in labels["session-4"]
    )
    assert "Co Producing Leeds" in labels["session-1"]
    assert "Salisbury NHS Foundation Trust" in labels["session-7"]
    assert not [t for ts in labels.values() for t in ts if t in FRAGMENTS]


def test_a_theme_needs_two_people_and_is_never_chatter(engine, config):
    alone = [post(config, "session-6", n, f"Kettles and housing associations, my note {n}",
                  author="solo@example.org") for n in range(5)]  # fmt: skip
    chatter = [post(config, "session-6", 10 + n, f"Nothing else worth watching tonight, housing {n}",
                    author=f"c{n}@example.org") for n in range(5)]  # fmt: skip
    store(engine, config, *alone, *chatter)
    themes = [t.label.casefold() for t in part(build_story(engine, config), "session-6").themes]
    assert "housing" in themes
    assert not {"kettles", "associations", "housing associations"} & set(themes)
    assert not {"nothing", "worth", "watching", "tonight", "worth watching"} & set(themes)


def test_key_points_never_quote_a_question_a_pledge_or_a_technical_problem(engine, config):
    texts = ["How do we fund link workers in every practice?", "We will fund link workers in every practice",
             "Link workers in every practice: the sound keeps cutting out"]  # fmt: skip
    posts = [
        post(config, "session-2", n, t, author=f"k{n}@example.org", likes=50)
        for n, t in enumerate(texts)
    ]
    posts += [post(config, "session-2", 10 + n, f"Link workers in every practice change lives, story {n}",
                   author=f"s{n}@example.org") for n in range(3)]  # fmt: skip
    store(engine, config, *posts)
    session = part(build_story(engine, config), "session-2")
    said = " ".join(k.sentence for k in session.key_points)
    assert session.key_points and "change lives" in said
    assert not any(words in said for words in ("How do we fund", "We will fund", "sound keeps"))


def test_the_bundled_example_says_what_was_said(engine, config):
    from aggregator.pipeline import collect, tag

    collect(engine, config)
    tag(engine, config)
    story = build_story(engine, config)
    for session in story.sessions:
        assert 2 <= len(session.key_points) <= 4, session.id
        assert session.narrative.startswith("“") and session.summary in session.narrative
        labels = [t.label for t in session.themes]
        assert not [t for t in labels if t in FRAGMENTS], labels
        assert all(k.cites and k.cites[0].url for k in session.key_points)
    # "after" looks back from the next day: its time names the day
    after = part(story, "after")
    assert after.peak_label.endswith("on Tuesday 29 November") or after.activity.peak_unit == "day"


def test_a_session_on_another_day_names_its_day(engine, config):
    closing = config.sessions[-1]
    next_day = replace(
        closing, start=closing.start + timedelta(days=1), end=closing.end + timedelta(days=1)
    )
    config = replace(config, sessions=(*config.sessions[:-1], next_day))
    store(engine, config, *(post(config, closing.id, 10, f"Closing thoughts on carers, part {n}",
                                 author=f"c{n}@example.org") for n in range(5)))  # fmt: skip
    closing_part = part(build_story(engine, config), closing.id)
    assert closing_part.peak_label == "19:40 on Tuesday 29 November"
    assert "around 19:40 on Tuesday 29 November" in closing_part.summary
