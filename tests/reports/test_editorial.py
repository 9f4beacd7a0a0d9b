"""reports/editorial.py with the rules it re-exports (speech.py, sentences.py): each rule alone with
its near misses, copies and spam across posts, cards, the labelled set's targets, and linear time on
adversarial input. The labelled set: tests/fixtures/editorial/SOURCES.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.editorial import (
    CLASSES,
    Item,
    build_context,
    card_text,
    classify,
    copy_key,
    highlight_eligible,
    is_copy,
    is_low_content,
    is_pledge,
    is_question,
    is_spam,
    is_speaker_quote,
    is_technical,
    originals,
    sentences,
    spam_accounts,
)
from reports.editorial_eval import TARGETS, LabelledFileError, evaluate
from tests.helpers import adversarial, best_seconds

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "editorial"
LABELLED, HELDOUT = FIXTURES / "labelled.jsonl", FIXTURES / "heldout.jsonl"


def posts(*texts: str, author: str = "a@example.org") -> list[Item]:
    return [Item(str(i), author, t) for i, t in enumerate(texts)]


# ---- questions -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["How do we make sure everyone is included? #CoPro16",
     "What does everyone think about paying patient partners?",
     "Q for @HelenBevan: how did you get the board on side?",
     "Q for the panel about housing",
     "Anyone got the link to the slides?",  # a request for a resource, not a broken link
     "@HelenBevan do you think STPs can ever be truly coproduced?",
     "Serious q: who pays for the volunteers' travel?",
     "Ok so how are people evaluating social prescribing locally? (watching in Leeds)",
     "Sut allwn ni wneud hyn yng Nghymru?", "Comment faire la même chose en France ?",
     "کیا یہ ریکارڈنگ بعد میں دستیاب ہوگی؟", "¿Dónde puedo encontrar los materiales?"],
)  # fmt: skip
def test_questions_ask_for_information_or_opinion(text):
    assert is_question(text)


@pytest.mark.parametrize(
    "text",
    ["'What matters to you?' asks @HelenBevan",  # a quoted speaker line
     '"Are we brave enough?" asked Jeremy Taylor',
     "Who knew a conversation about housing could be so moving?",  # rhetorical
     "How brilliant was that session?!", "Why coproduction? Because it works.",
     "Remember when engagement meant a survey? Not any more.",
     "I'm going to ask our CEO: where are the patients?",  # a pledge with a question mark
     "Can anyone else hear an echo on the webex?",  # technical
     "Stream stuck again?", "Great question from Sue about funding",
     "Slides: https://example.org/deck?page=2", "No question about it, the best session today"],
)  # fmt: skip
def test_near_misses_are_not_questions(text):
    assert not is_question(text)


# ---- pledges -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["I will take the six principles to our next board meeting", "We're going to try this in Leeds",
     "My pledge: no more meetings about patients without patients",
     "I commit to asking what matters at every appointment",
     "I'm taking this back to my team tomorrow", "Definitely going to try this in our practice",
     "Our trust will publish what patients tell us", "i'll raise this at the CCG board next week",
     "I've committed to a listening session with our carers in January",
     "I will ask at our next team meeting: who isn't in the room?",
     "Byddaf yn rhannu hyn gyda fy nhîm yfory", "Je vais proposer ce modèle à mon équipe"],
)  # fmt: skip
def test_pledges_are_first_person_commitments(text):
    assert is_pledge(text)


@pytest.mark.parametrize(
    "text",
    ["I'll be watching the recording later", "We need to fix the sound",
     "Someone should tell the commissioners", "I'll see if I can join later", "We'll see",
     "I'm going to be late for session 3", "I'm going to need a bigger notebook",
     "They're going to publish the recording", "Helen says we will all need to be braver",
     '"We will put families first" - Dawn Nicholls', "Let's all commit to listening more",
     "Will you commit to paying patient partners, @CarolRead?", "I would fund this tomorrow",
     "I'll be tuning in again after lunch", "Mentally ill people will benefit most"],
)  # fmt: skip
def test_near_misses_are_not_pledges(text):
    assert not is_pledge(text)


# ---- technical problems --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["Can anyone else hear an echo on the webex?", "The stream crashed again. Awful.",
     "No sound on the webex for the last 5 minutes", "Can't hear Carol Read at all",
     "The link in the joining email isn't working - help!", "Slides not showing, just a black screen",
     "Buffering every 30 seconds", "Anyone else having connection issues?", "Screen's gone blank",
     "Webex won't let me in", "Sound is really quiet on this one", "The audio is out of sync",
     "Picture frozen on Helen's face 😂", "Someone's mic is on - we can all hear typing",
     "Dim sain ar y ffrwd o gwbl", "Le son coupe sans arrêt sur le webex"],
)  # fmt: skip
def test_technical_problems(text):
    assert is_technical(text)


@pytest.mark.parametrize(
    "text",
    ["Sound advice from Helen: start with what people can do, not what they can't",
     "I want to echo what Alison said about carers", "The link between housing and health is clear",
     "Our care teams are stronger with patient leaders", "Mic drop moment from Becky 🎤",
     "Thanks to the tech team for a flawless stream today", "Can't hear this enough: nothing about us",
     "The best sessions left the slides behind and told the story", "Streams of funding are siloed",
     "Watching the webex from our ward office", "Anyone got the link to the slides?"],
)  # fmt: skip
def test_near_misses_are_not_technical(text):
    assert not is_technical(text)


# ---- speaker quotes ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "speaker"),
    [('"People are not hard to reach, services are" says Helen Bevan #CoPro16', "Helen Bevan"),
     ('"Housing is a health intervention" - @AlisonCameron', "@AlisonCameron"),
     ('Helen Bevan: "Lone wolves burn out. Mobilisers build movements"', "Helen Bevan"),
     ("“Who cares for the carers?” – Dawn Nicholls opening session 5", "Dawn Nicholls"),
     ("'Start with what's strong, not what's wrong' - Sarah Myers", "Sarah Myers"),
     ('As Jeremy Taylor said, "the principles are a floor, not a ceiling"', "Jeremy Taylor"),
     ('"We are not hard to reach" (Mandy Rudzenko)', "Mandy Rudzenko"),
     ("« Rien pour nous sans nous » – Rob Webster", "Rob Webster"),
     ("“we treat the disease but miss the person” – helen bevan #CoPro16", "helen bevan")],
)  # fmt: skip
def test_speaker_quotes_give_the_line_and_who_said_it(text, speaker):
    found = is_speaker_quote(text)
    assert found is not None and found[1] == speaker
    assert found[0] in text and '"' not in found[0]


@pytest.mark.parametrize(
    "text",
    ['Loved the "Lone Wolves v Mobilisers" framing today', 'The so-called "hard to reach"',
     '"Inspiring" doesn\'t begin to cover it', 'My daughter just asked "are you working or not?"',
     "Helen Bevan: great talk", "Helen's point about power has stayed with me"],
)  # fmt: skip
def test_scare_quotes_titles_and_unquoted_lines_are_not_speaker_quotes(text):
    assert is_speaker_quote(text) is None


# ---- low content ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["🔥🔥🔥", "#CoPro16 #EveryoneIncluded", "@HelenBevan @CarolRead", "+1", "this!", "So true",
     "👏🏾👏🏾 #CoPro16", "https://example.org/a #CoPro16", "100%", "RT @x: 🔥🔥🔥", "好"],
)  # fmt: skip
def test_low_content(text):
    assert is_low_content(text)


@pytest.mark.parametrize(
    "text", ["Nothing about us without us", "🔥 session from Becky Malby", "这是一次非常好的会议"]
)
def test_a_few_words_that_say_something_are_not_low_content(text):
    assert not is_low_content(text)


# ---- copies --------------------------------------------------------------------------------------
def test_reposts_and_text_copies_count_as_reach_of_the_original():
    items = [
        Item("1", "a", "How do we scale this? #CoPro16 https://example.org/x"),
        Item("2", "b", "RT @a: How do we scale this? #CoPro16"),
        Item("3", "c", "how do  we scale THIS? #EveryoneIncluded"),
        Item("4", "d", "How do we scale that?"),
        Item("5", "e", "🔥🔥"),
        Item("6", "f", "🔥🔥"),  # no words: not a copy, only low content
    ]
    kept, copies_of = originals(items)
    assert [p.id for p in kept] == ["1", "4", "5", "6"]
    assert copies_of == {"1": ["2", "3"]}
    context = build_context(items)
    assert context.reach("1") == 2 and is_copy(items[2], context) and not is_copy(items[3], context)


def test_a_cut_repost_is_matched_by_its_first_words_and_an_orphan_repost_is_never_kept():
    long = "Coproduction is not a project, it is a way of being, and every board should know it"
    items = [Item("1", "a", long), Item("2", "b", f"RT @a: {long[:60]}…"),
             Item("3", "c", "RT @zed: something said elsewhere")]  # fmt: skip
    kept, copies_of = originals(items)
    assert [p.id for p in kept] == ["1"] and copies_of == {"1": ["2"]}


def test_copy_key_ignores_case_links_hashtags_and_repost_heads():
    assert copy_key("RT @x: RT @y: Hello  World #Tag https://a.b/c") == "hello world"
    assert copy_key("🔥🔥") == ""


# ---- spam ----------------------------------------------------------------------------------------
def test_a_hashtag_spammer_is_a_spam_account_and_all_its_posts_are_spam():
    spammer = [
        Item(
            "1", "spam", "Grow your followers! https://x.example/a #NHS #care #growth #ai #follow"
        ),
        Item("2", "spam", "#CoPro16 #NHS #health #care #digital #innovation #startup #trending"),
        Item("3", "spam", "Cheap likes for your event, DM us https://x.example/b"),
        Item("4", "spam", "Want more engagement this afternoon?"),  # spam only by its account
    ]
    person = Item("5", "p", "Brilliant session on housing #CoPro16 #EveryoneIncluded #housing")
    context = build_context([*spammer, person])
    assert spam_accounts([*spammer, person]) == {"spam"}
    assert all(is_spam(p, context) for p in spammer) and not is_spam(person, context)


def test_one_account_repeating_a_text_or_a_link_is_spam_but_not_a_spam_account():
    live = [Item(str(i), "live", f"Session {i}: what we heard about carers") for i in range(10)]
    promos = [Item(f"p{i}", "live", f"{w} https://live.example/watch") for i, w in
              enumerate(("Watch live", "Tune in now", "Don't miss it"))]  # fmt: skip
    repeats = [Item(f"r{i}", "live", "Lunch break, back at 1pm") for i in range(3)]
    twice = [Item(f"t{i}", "p", "Slides at https://example.org/deck") for i in range(2)]
    everything = [*live, *promos, *repeats, *twice]
    context = build_context(everything)
    assert context.spam_accounts == frozenset()
    assert {p.id for p in everything if is_spam(p, context)} == {"p0", "p1", "p2", "r0", "r1", "r2"}


@pytest.mark.parametrize(
    ("text", "spam"),
    [("Best deals on mobility aids - 50% off https://shop.example/x", True),
     ("Boost your reach https://a.example/1 https://a.example/2 https://a.example/3", True),
     ("Great blog on coproduction by Helen Bevan: https://example.org/blog", False),
     ("Followers of the Leg Club model will love this", False)],  # a sales word, but no link
)  # fmt: skip
def test_spam_on_its_own(text, spam):
    assert is_spam(Item("1", "x", text), build_context([])) is spam


# ---- together ------------------------------------------------------------------------------------
def test_classify_gives_each_class_its_precedence():
    items = posts(
        "Can anyone else hear an echo on the webex?",
        "I'll set up a carers' group in Leeds - who's in?",
        '"What matters to you?" asks @HelenBevan',
        "Want more followers? https://x.example/buy",
        "this!",
    )
    context = build_context(items)
    got = [classify(p, context) for p in items]
    assert got == [{"technical"}, {"pledge"}, {"quote"}, {"spam"}, {"low_content"}]


def test_highlight_eligible_only_for_original_readable_posts():
    items = [
        Item("1", "a", "Housing is a health intervention, and Alison showed why"),
        Item("2", "b", "RT @a: Housing is a health intervention, and Alison showed why"),
        Item("3", "c", "🔥🔥🔥"),
        Item("4", "d", "The stream crashed again. Awful."),
        Item("5", "e", "Cheap followers https://x.example/buy"),
    ]
    context = build_context(items)
    assert [highlight_eligible(p, context) for p in items] == [True, False, False, False, False]


# ---- sentences and cards -------------------------------------------------------------------------
def test_sentences_split_before_capitals_but_not_after_abbreviations_initials_or_in_links():
    text = (
        "Dr. Smith spoke first, e.g. about J. Wolf's work. See https://example.org/a.B.c for more! "
        "Was it good? Yes.\nNew line here"
    )
    assert sentences(text) == [
        "Dr. Smith spoke first, e.g. about J. Wolf's work.",
        "See https://example.org/a.B.c for more!",
        "Was it good?",
        "Yes.",
        "New line here",
    ]


def test_card_text_keeps_short_posts_whole():
    assert card_text("  Short and sweet.  ") == ("Short and sweet.", False)


def test_card_text_cuts_a_long_post_at_a_sentence_boundary():
    first = "Coproduction is not a project. " * 6  # 186 characters of whole sentences
    text, cut = card_text(first + "And then a sentence far too long to fit " * 5, limit=280)
    assert cut and text == first.rstrip() + " …"


def test_card_text_falls_back_to_a_word_boundary():
    text, cut = card_text("word " * 100, limit=50)
    assert cut and text.endswith("word…") and len(text) <= 51


@given(st.text(max_size=700), st.integers(min_value=10, max_value=300))
def test_card_text_never_exceeds_the_limit_plus_one(text, limit):
    shown, cut = card_text(text, limit)
    assert len(shown) <= limit + 1
    assert cut == (len(text.strip()) > limit)
    if cut:
        kept = shown.removesuffix("…").rstrip()
        assert text.strip().startswith(kept)


# ---- the labelled set ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", [LABELLED, HELDOUT], ids=["labelled", "heldout"])
def test_the_rules_meet_their_targets_on_the_labelled_and_held_out_sets(path):
    evaluation = evaluate(path)
    assert evaluation.posts >= (600 if path == LABELLED else 200)
    assert evaluation.failures() == []
    for name, (precision, recall) in TARGETS.items():
        score = evaluation.scores[name]
        assert score.tp >= 20 and score.precision >= precision and score.recall >= recall


@pytest.mark.parametrize(
    ("path", "at_least"), [(LABELLED, 200), (HELDOUT, 80)], ids=["labelled", "heldout"]
)
def test_no_low_content_spam_copy_or_technical_post_is_eligible_as_a_highlight(path, at_least):
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    items = [Item(r["id"], r["author"], r["text"]) for r in records]
    context = build_context(items)
    never = {"low_content", "spam", "copy", "technical"}
    barred = [i for r, i in zip(records, items, strict=True) if never & set(r["labels"])]
    assert len(barred) >= at_least
    assert not [i.id for i in barred if highlight_eligible(i, context)]
    ordinary = [i for r, i in zip(records, items, strict=True) if not r["labels"]]
    assert sum(highlight_eligible(i, context) for i in ordinary) >= 0.95 * len(ordinary)


def test_the_labelled_set_is_mixed_and_messy():
    records = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    by_author: dict[str, int] = {}
    for r in records:
        by_author[r["author"]] = by_author.get(r["author"], 0) + 1
        assert set(r["labels"]) <= set(CLASSES)
    assert max(by_author.values()) >= 100  # the live-tweeting account
    assert max(len(r["text"]) for r in records) >= 24_000  # one post of about 25,000 characters
    assert {c for r in records for c in r["labels"]} == set(CLASSES)


def test_evaluation_lines_name_every_class_and_the_targets():
    lines = evaluate(HELDOUT).format_lines()
    assert all(any(line.startswith(name) for line in lines) for name in CLASSES)
    assert sum(line.endswith("  ok") for line in lines) == len(TARGETS)


def test_evaluation_counts_misses_and_false_alarms(tmp_path):
    path = tmp_path / "set.jsonl"
    rows = [{"id": "1", "author": "a", "text": "How do we scale this?", "labels": ["question"]},
            {"id": "2", "author": "b", "text": "We will scale it", "labels": ["question"]},
            {"id": "3", "author": "c", "text": "Who knew?", "labels": []}]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    evaluation = evaluate(path)
    question = evaluation.scores["question"]
    assert (question.tp, question.fp, question.fn) == (1, 0, 1)
    assert evaluation.errors["question"] == ([], ["2"])
    assert any(f.startswith("question: precision 1.00") for f in evaluation.failures())


@pytest.mark.parametrize(
    ("line", "message"),
    [("not json", "bad.jsonl:1: not a JSON object"), ('{"id": "1", "text": "x"}', "missing author"),
     ('{"id": "1", "author": "a", "text": "x", "labels": ["joke"]}', "unknown label(s) joke")],
)  # fmt: skip
def test_a_bad_labelled_file_is_named_with_its_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(LabelledFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(path)


# ---- linear time ---------------------------------------------------------------------------------
# A rule that backtracks over a run it already read takes 64 times as long on 8 times the text; a
# linear one, 8 times. 128 KiB of text shows the difference as well as a megabyte, in an eighth of
# the time.


@pytest.mark.parametrize(
    "rule",
    [is_technical, is_question, is_pledge, is_speaker_quote, is_low_content, copy_key, sentences,
     card_text],
)  # fmt: skip
def test_rules_take_time_linear_in_adversarial_text(rule):
    small, large = adversarial(2**14), adversarial(2**17)
    ratio = best_seconds(rule, large, 3) / max(best_seconds(rule, small, 3), 1e-4)
    assert ratio < 24, f"{rule.__name__}: 8 times the text took {ratio:.0f} times as long"


def test_reading_a_set_of_posts_takes_time_linear_in_their_text():
    def read(text: str) -> None:
        half = len(text) // 2
        items = [Item("1", "a", text), Item("2", "a", text[:half]), Item("3", "b", text[half:])]
        context = build_context(items)
        for item in items:
            classify(item, context)

    ratio = best_seconds(read, adversarial(2**15), 3) / best_seconds(read, adversarial(2**12), 3)
    assert ratio < 24, f"8 times the text took {ratio:.0f} times as long"
