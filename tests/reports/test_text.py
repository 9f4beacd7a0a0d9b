"""reports/text.py: tokens and terms, sentiment without NLTK corpora, the question to quote, surface
forms and clean text (questions and pledges themselves: reports/editorial.py, tests/reports/test_editorial.py)."""

from __future__ import annotations

from reports import text
from reports.text import clean_text, question_sentence, sentiment, surface_forms, terms, tokens


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
    good, bad = sentiment("Brilliant, inspiring session"), sentiment("Awful sound, terrible")
    assert good[0] > 0.3 and bad[0] < -0.3
    assert 0 <= good[1] <= 1


def test_question_sentence_quotes_the_question_only():
    assert question_sentence(
        "Q for the panel about Becky Malby: how do we scale this? #CoPro16"
    ) == ("How do we scale this?")
    assert question_sentence("Loved it. Who else is going next year? https://x.org #a") == (
        "Who else is going next year?"
    )
    assert question_sentence("No question here") is None


def test_surface_forms_keep_names_and_ignore_sentence_capitals():
    forms = surface_forms(
        ["Inspiring talk on Monday. Housing matters", "with Becky Malby"], ["Rob Webster"]
    )
    assert forms["rob webster"] == "Rob Webster"
    assert forms["becky malby"] == "Becky Malby"
    assert forms["inspiring"] == "inspiring" and forms["housing"] == "housing"
    assert forms["monday"] == "Monday"


def test_case_31_clean_text_removes_bidi_zero_width_and_nul_but_keeps_emoji_sequences():
    hostile = "pay\u202eusb.exe\u200b\x00 ok\ufeff\u2066x\u2069"
    assert clean_text(hostile) == "payusb.exe okx"
    nurse = "\U0001f469\u200d\u2695\ufe0f"
    assert clean_text(nurse) == nurse
    assert clean_text("a\u200db") == "ab"
