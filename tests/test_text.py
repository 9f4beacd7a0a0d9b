"""reports/text.py: tokens and terms, sentiment without NLTK corpora, questions, pledges,
near-duplicates, distinctive themes, and the narrative paragraph."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from reports import text
from reports.text import (
    Facts,
    analyse_text,
    clean_text,
    distinct,
    distinctive_terms,
    is_action,
    is_question,
    join_and,
    narrative,
    question_sentence,
    surface_forms,
    terms,
    tokens,
)


def test_tokens_drop_links_handles_numbers_and_possessives():
    got = tokens(
        "Queen's Award! See https://ex.org/a?b=1 @helen@nhs.social 2016 #CoPro16 co-production"
    )
    assert got == ["queen", "award", "see", "#copro16", "co-production"]


def test_terms_are_content_words_hashtags_and_bigrams_without_stopwords():
    got = terms("The Lone Wolves v Mobilisers: six principles for engaging people #CoPro16")
    assert "lone wolves" in got and "six principles" in got and "#copro16" in got
    assert "engaging people" in got
    assert not [t for t in got if any(w in text.STOPWORDS for w in t.split())]
    assert "principles engaging" not in got  # 'for' sits between them in the text
    assert not [t for t in got if " " in t and "#" in t]


def test_sentiment_needs_no_nltk_corpora(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # an empty data folder: no corpora
    text.sentiment.cache_clear()
    good, bad = analyse_text("Brilliant, inspiring session"), analyse_text("Awful sound, terrible")
    assert good.polarity > 0.3 and bad.polarity < -0.3
    assert 0 <= good.subjectivity <= 1


@pytest.mark.parametrize(
    "post",
    ["How do we scale this? #CoPro16", "Q for the panel about housing", "Q: who funds it",
     "Can anyone hear an echo on the webex?"],
)  # fmt: skip
def test_questions(post):
    assert is_question(post)


@pytest.mark.parametrize(
    "post", ["Great session #CoPro16", "Slides: https://example.org/deck?page=2", "Agreed!"]
)
def test_not_questions(post):
    assert not is_question(post)


@pytest.mark.parametrize(
    "post",
    ["We will take this back to our board", "I'm going to try this in Leeds", "Let's do it",
     "My action: call the GP practice", "Next step for us: a carers' forum", "We need to listen more"],
)  # fmt: skip
def test_pledges(post):
    assert is_action(post)


@pytest.mark.parametrize("post", ["We'll see how it goes", "Great discussion", "Let's see"])
def test_not_pledges(post):
    assert not is_action(post)


def test_question_sentence_quotes_the_question_only():
    assert question_sentence(
        "Q for the panel about Becky Malby: how do we scale this? #CoPro16"
    ) == ("How do we scale this?")
    assert question_sentence("Loved it. Who else is going next year? https://x.org #a") == (
        "Who else is going next year?"
    )
    assert question_sentence("No question here") is None


def test_near_duplicates_are_dropped_and_distinct_posts_kept():
    posts = [
        "Great discussion, patients as equal partners #CoPro16",
        "Great discussion, patients as equal partners #CoPro16 #EveryoneIncluded",
        "great discussion - patients as EQUAL partners!",
        "Brilliant from Helen Bevan #CoPro16",
        "Brilliant from Jeremy Taylor #CoPro16",
    ]
    kept = distinct(posts, lambda p: p, limit=10)
    assert kept == [posts[0], posts[3], posts[4]]
    assert distinct(posts, lambda p: p, limit=2) == [posts[0], posts[3]]


def test_distinctive_terms_prefer_the_session_phrase_over_event_wide_words():
    event = Counter({"#copro16": 100, "coproduction": 40, "lone": 12, "wolves": 12, "lone wolves": 12,
                     "housing": 20, "webex": 3})  # fmt: skip
    part = Counter({"#copro16": 10, "coproduction": 4, "lone": 10, "wolves": 10, "lone wolves": 10,
                    "webex": 1})  # fmt: skip
    found = distinctive_terms(part, event, skip=["#copro16"])
    assert [t.term for t in found] == [
        "lone wolves"
    ]  # its words are absorbed; event-wide words aren't distinctive
    assert found[0].count == 10 and found[0].score > 1.0
    assert distinctive_terms(Counter(), event) == []


def test_a_rare_term_is_not_a_theme():
    event = Counter({"echo": 1, "housing": 30})
    assert distinctive_terms(Counter({"echo": 1}), event) == []


def test_surface_forms_keep_names_and_ignore_sentence_capitals():
    forms = surface_forms(
        ["Inspiring talk on Monday. Housing matters", "with Becky Malby"], ["Rob Webster"]
    )
    assert forms["rob webster"] == "Rob Webster"
    assert forms["becky malby"] == "Becky Malby"
    assert forms["inspiring"] == "inspiring" and forms["housing"] == "housing"
    assert forms["monday"] == "Monday"


def test_clean_text_removes_bidi_zero_width_and_nul_but_keeps_emoji_sequences():
    hostile = "pay\u202eusb.exe\u200b\x00 ok\ufeff\u2066x\u2069"
    assert clean_text(hostile) == "payusb.exe okx"
    nurse = "\U0001f469\u200d\u2695\ufe0f"
    assert clean_text(nurse) == nurse
    assert clean_text("a\u200db") == "ab"


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
        {"posts": 3, "people": 1, "top_author": "ana@example.org", "positive": 1.0},
        {"posts": 7, "people": 5, "peak": "13:25", "peak_count": 2, "themes": ["housing"], "actions": 1},
        {"posts": 312, "people": 120, "peak": "13:25", "peak_count": 9, "busiest": True, "later": 14,
         "themes": ["Becky Malby", "social prescribing", "registered", "link workers"], "questions": 12,
         "question": "How do we scale this?", "actions": 3, "positive": 0.7, "negative": 0.05,
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
              question="How do we scale this?", positive=0.7, negative=0.05)
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
