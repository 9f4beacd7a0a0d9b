"""reports/keypoints.py: extractive key points that cite their posts, prefer speakers' quoted lines,
never come from what the story does not show, and take time linear in the posts' text."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from reports.editorial import Item, build_context, classify
from reports.keypoints import KeyPoint, key_points
from tests.helpers import adversarial, best_seconds

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "editorial"

HOUSING = [
    Item("q1", "live", '"Housing is a health intervention" says Alison Cameron #CoPro16'),
    Item("h1", "sue", "Alison Cameron making the case that housing is a health intervention"),
    Item("h2", "raj", "Housing really is a health intervention, our tenants prove it every week"),
    Item("h3", "tom", "Good housing as a health intervention: hear hear, Alison"),
]
VOLUNTEERS = [
    Item("v1", "aisha", "Volunteers on the wards cut length of stay for older patients"),
    Item(
        "v2",
        "dele",
        "The Engage volunteers on wards gave older patients time, and stays were shorter",
    ),
    Item(
        "v3", "priya", "Older patients with ward volunteers went home sooner. Length of stay fell."
    ),
]
NOISE = [
    Item(
        "n1", "kev", "RT @sue: Alison Cameron making the case that housing is a health intervention"
    ),
    Item("n2", "gareth", "The stream crashed again, we missed the housing bit. Awful."),
    Item("n3", "maureen", "🔥🔥🔥 #CoPro16"),
    Item(
        "n4",
        "spam",
        "Housing deals this week only https://x.example/buy #NHS #housing #health #care #ad",
    ),
    Item("n5", "bronwen", "How do we fund volunteers on the wards for older patients?"),
    Item("n6", "sue", "I will take the housing health intervention idea to our board"),
]


def _words(text: str) -> str:
    return " ".join(text.split())


def test_key_points_cite_existing_posts_once_each_with_the_sentence_from_the_first():
    posts = [*HOUSING, *VOLUNTEERS, *NOISE]
    points = key_points(posts, k=3)
    texts = {p.id: p.text for p in posts}
    assert len(points) == 2  # two things were said; no third worth a point
    cited = [i for point in points for i in point.post_ids]
    assert set(cited) <= set(texts) and len(cited) == len(set(cited))
    for point in points:
        assert _words(point.sentence) in _words(texts[point.post_ids[0]])
    assert {i for p in points for i in p.post_ids} == {p.id for p in [*HOUSING, *VOLUNTEERS]}


def test_key_points_never_come_from_copies_technical_low_content_spam_questions_or_pledges():
    points = key_points([*HOUSING, *VOLUNTEERS, *NOISE], k=4)
    assert not {i for p in points for i in p.post_ids} & {p.id for p in NOISE}


def test_a_speakers_quoted_line_is_preferred_and_attributed():
    (housing,) = [p for p in key_points([*HOUSING, *VOLUNTEERS], k=2) if "q1" in p.post_ids]
    assert housing == KeyPoint(
        "Housing is a health intervention", housing.post_ids, "Alison Cameron"
    )
    assert housing.post_ids[0] == "q1" and set(housing.post_ids) == {p.id for p in HOUSING}


def test_a_listed_speaker_is_preferred_to_someone_else_quoted():
    quotes = [
        Item("1", "live", '"Lone wolves burn out, mobilisers build movements" - Jo Bloggs'),
        Item("2", "live2", '"Lone wolves burn out and mobilisers build movements" - Helen Bevan'),
        Item("3", "sue", "Lone wolves versus mobilisers: the movements point landed"),
        Item("4", "raj", "Mobilisers build movements, lone wolves burn out, so true"),
    ]
    assert key_points(quotes, k=1)[0].speaker == "Jo Bloggs"  # the more central wording
    assert key_points(quotes, k=1, speakers=["@HelenBevan"])[0].speaker == "Helen Bevan"


def test_one_prolific_account_cannot_set_the_agenda():
    live = [Item(f"l{i}", "live", f"Dashboard metrics slide {i}: digital dashboards everywhere")
            for i in range(30)]  # fmt: skip
    points = key_points([*live, *VOLUNTEERS], k=1)
    assert len(points) == 1 and points[0].post_ids[0].startswith("v")


def test_points_say_different_things():
    near = [Item(f"h{i}", f"p{i}", f"Housing is a health intervention, point {w}")
            for i, w in enumerate(("one", "two", "three", "four", "five"))]  # fmt: skip
    points = key_points([*near, *VOLUNTEERS], k=2)
    assert {p.post_ids[0][0] for p in points} == {"h", "v"}


def test_nothing_readable_gives_no_key_points():
    assert key_points([]) == []
    assert key_points(NOISE[:4]) == []


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k of at least 1"):
        key_points(HOUSING, k=0)


@pytest.mark.parametrize("name", ["labelled.jsonl", "heldout.jsonl"])
def test_key_points_of_each_hour_of_the_labelled_day_cite_only_shown_posts_of_that_hour(name):
    records = [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]
    hours: dict[str, list[Item]] = defaultdict(list)
    for r in records:
        hours[r["created_at"][:13]].append(Item(r["id"], r["author"], r["text"]))
    busy = [posts for posts in hours.values() if len(posts) >= 30]
    assert busy
    for posts in busy:
        context = build_context(posts)
        points = key_points(posts, k=3, context=context)
        assert 2 <= len(points) <= 3
        by_id = {p.id: p for p in posts}
        for point in points:
            assert all(i in by_id for i in point.post_ids)
            shown = {c for i in point.post_ids for c in classify(by_id[i], context)}
            assert not shown & {"copy", "spam", "low_content", "technical", "question", "pledge"}


def test_key_points_take_time_linear_in_the_posts_text():
    def read(text: str) -> None:
        half = len(text) // 2
        key_points([Item("1", "a", text), Item("2", "b", text[:half]), Item("3", "c", text[half:])])

    ratio = best_seconds(read, adversarial(2**14), 3) / best_seconds(read, adversarial(2**11), 3)
    assert ratio < 24, f"8 times the text took {ratio:.0f} times as long"
