"""reports/narrative.py: each part's paragraph, for none, one, few and many posts."""

from __future__ import annotations

import re

import pytest

from reports.narrative import Facts, join_and, narrative


def facts(**kw):
    base = {"kind": "session", "turn": 0, "posts": 0, "people": 0}
    return Facts(**{**base, **kw})


GRAMMAR = re.compile(r"\b1 (posts|people|questions|pledges)\b|\bNone\b|  |\.\.|\s[,.]")


@pytest.mark.parametrize("turn", range(3))
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"posts": 1, "people": 1, "top_author": "ana@example.org"},
        {"posts": 2, "people": 2, "top_author": "ana@example.org", "questions": 1, "question": "Why?"},
        {"posts": 3, "people": 1, "top_author": "ana@example.org", "positive": 100},
        {"posts": 7, "people": 5, "peak": "13:25", "peak_count": 2, "themes": ["housing"], "actions": 1},
        {"posts": 312, "people": 120, "peak": "13:25", "peak_count": 9, "busiest": True, "later": 14,
         "themes": ["Becky Malby", "social prescribing", "registered", "link workers"], "questions": 12,
         "question": "How do we scale this?", "actions": 3, "positive": 70, "negative": 5,
         "top_author": "Ana", "top_posts": 60},
    ],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["session", "before", "after"])
def test_narrative_reads_well_for_none_one_few_and_many(kind, kw, turn):
    paragraph = narrative(facts(kind=kind, turn=turn, **kw))
    assert paragraph[:1].isupper() or paragraph[:1].isdigit()
    assert paragraph.endswith((".", "”"))
    assert not GRAMMAR.search(paragraph), paragraph
    if kw.get("posts", 0) == 0:
        assert "No posts" in paragraph or "Nothing" in paragraph
    if kw.get("posts") == 1:
        assert "one post" in paragraph.lower() and "ana@example.org" in paragraph


def test_narrative_of_a_busy_session_says_volume_peak_topics_tone_and_questions():
    paragraph = narrative(
        facts(posts=312, people=120, peak="13:25", peak_count=9, busiest=True,
              themes=["Becky Malby", "registered", "social prescribing"], questions=12,
              question="How do we scale this?", positive=70, negative=5)
    )  # fmt: skip
    assert "312 posts from 120 people" in paragraph
    assert "13:25" in paragraph and "busiest session" in paragraph
    assert (
        "Becky Malby and social prescribing" in paragraph
    )  # 'registered' is no topic in a sentence
    assert "positive" in paragraph and "12 questions" in paragraph
    assert "“How do we scale this?”" in paragraph


def test_narrative_wording_varies_from_one_session_to_the_next():
    said = {narrative(facts(posts=40, people=30, turn=t)).split(" ")[0] for t in range(3)}
    assert len(said) == 3


def test_join_and():
    assert join_and(["a"]) == "a" and join_and(["a", "b"]) == "a and b"
    assert join_and(["a", "b", "c"]) == "a, b and c"
