"""Reliability case 39: a post of megabytes costs time in proportion to its length, never its square.

No wall-clock budget: each text function is timed on adversarial text of N characters and on the same
text GROWTH times longer, and its growth is compared with a linear baseline timed on the same two
texts (one regex pass over every character). A linear function grows like the baseline, a quadratic
one GROWTH times more. Each time is the best of REPS runs with the garbage collector off, as timeit
does, so a busy machine slows a run without failing the test.
"""

from __future__ import annotations

import gc
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from aggregator import logs, tagging
from aggregator.config import load_config
from aggregator.privacy import Redactor
from aggregator.scrubber import Scrubber
from connectors import archives, bluesky, html, http
from reports import editorial, features, text
from reports.render import md_escape
from tests.helpers import ROOT, invoke

N = 100_000
GROWTH = 4
REPS = 2
LIMIT = 2.5  # times the baseline's growth: linear stays near 1, quadratic near GROWTH
BASELINE = re.compile(r"\w+")

# (before, repeated, after): runs that make a backtracking regex or a slicing loop read the text
# again and again. The first ones are the shapes of the bugs this file was written for.
PATTERNS = [
    ("", "a", ""),  # a long word and no "?": the old question regex restarted at every letter
    ("", "a ", ""),  # many words: the sentence-start check sliced the text before each one
    ("a", "s", "a"),  # a run of s inside a word: the old plural regex
    ("", "!", ""),  # punctuation TextBlob splits off one character at a time
    ("", "&", ""),  # ampersands, no-break spaces: nh3 slows with a text node's square
    ("", "\u00a0", ""),
    ("", "(", ""),  # an unclosed bracket, again and again (display-name decorations)
    ("", " -", ""),  # " - tail" decorations of a display name
    ("", " ", ""),
    ("", "a?", ""),
    ("", "'", ""),
    ("", "@", ""),
    ("", "#", ""),
    ("http://", "a", ""),
    ("", "@a.", ""),
    ("", "<a ", ""),
    ("", "Aa", ""),
]


def adversarial(size: int) -> str:
    """`size` characters: a block of each pattern, one after the other."""
    block = size // len(PATTERNS)
    parts = []
    for before, unit, after in PATTERNS:
        repeat = (block - len(before) - len(after)) // len(unit)
        parts.append(before + unit * repeat + after)
    return "\n".join(parts)


def best(f: Callable[[str], object], value: str) -> float:
    times = []
    for _ in range(REPS):
        start = time.process_time()
        f(value)
        times.append(time.process_time() - start)
    return min(times)


def growth(f: Callable[[str], object], small: str, big: str) -> float:
    """How many times longer `f` takes on `big` than on `small`, relative to the baseline's growth."""
    gc.disable()
    try:
        mine = best(f, big) / best(f, small)
        baseline = best(BASELINE.findall, big) / best(BASELINE.findall, small)
    finally:
        gc.enable()
    return mine / baseline


@pytest.fixture(scope="module")
def texts() -> tuple[str, str]:
    return adversarial(N), adversarial(N * GROWTH)


def _uncached_sentiment(value: str) -> object:
    text.sentiment.cache_clear()  # the cache would time a dictionary lookup
    return text.sentiment(value)


def _analysed(value: str) -> object:
    text.sentiment.cache_clear()
    return features.features(value)


PROGRAMME = tagging.Programme.from_config(load_config(ROOT / "config.toml"))
WHEN = datetime(2016, 11, 28, 15, tzinfo=UTC)
REDACTOR = Redactor(["alice@example.org", "bob"], ["Alice Smith (she/her)", "Carol"])
ENV = {"AGGREGATOR_X_TOKEN": "s3cr3t-t0ken", "AGGREGATOR_WEBHOOK": "https://hooks.example/abc123"}


def _name(value: str) -> object:
    """A display name learnt by the scrubber: its decorations ("(she/her)", "| NHS") cut off."""
    return Scrubber(lambda *_: None).add(value, "x")


def _interchange(value: str) -> object:
    """An archive line's text: hashtags, mentions and links found in it."""
    record = {"platform": "x", "id": "1", "created_at": "2016-11-28T12:00:00Z", "author": "a"}
    return archives.post_from_interchange({**record, "text": value, "url": ""})


def _bluesky(value: str) -> object:
    """A Bluesky post with a mention facet every 20 bytes of its text, each spanning all of it
    and each a short one: the text was encoded again for every facet."""
    size = len(value.encode("utf-8"))
    spans = [(0, size), *((start, start + 10) for start in range(0, size, 20))]
    facets = [
        {"index": {"byteStart": start, "byteEnd": end},
         "features": [{"$type": "app.bsky.richtext.facet#mention", "did": f"did:plc:{start}"}]}
        for start, end in spans * 2
    ]  # fmt: skip
    record = {"text": value, "createdAt": "2016-11-28T12:00:00Z", "facets": facets}
    author = {"handle": "a.bsky.social", "did": "did:plc:a"}
    view = {"uri": "at://did:plc:a/app.bsky.feed.post/1", "author": author, "record": record,
            "indexedAt": "2016-11-28T12:00:00Z"}  # fmt: skip
    return bluesky.post_from_view(view)


def _link_header(value: str) -> object:
    """A response's Link header read as {rel: url} (headers are capped, but a server is hostile)."""
    return http.Response(200, httpx.Headers({"link": value}), b"", "https://m.example/").links


# Every function that reads post text (or a name or a log line that may quote it), as shipped:
# the analysis reads text.MAX_ANALYSED characters, the others the whole text.
FUNCTIONS: dict[str, Callable[[str], object]] = {
    "text.clean_text": text.clean_text,
    "text.sanitise_html": text.sanitise_html,
    "text.tokens": text.tokens,
    "text.terms": text.terms,
    "text.surface_forms": lambda v: text.surface_forms([v], names=[v[:200]]),
    "text.sentiment": _uncached_sentiment,
    "editorial.is_question": editorial.is_question,
    "editorial.is_pledge": editorial.is_pledge,
    "features.features (the stored analysis)": _analysed,
    "text.shingles": text.shingles,
    "text.question_sentence": text.question_sentence,
    "tagging.normalise": tagging.normalise,
    "tagging.decide": lambda v: tagging.decide(
        tagging.TagInput("1", WHEN, v, hashtags=(v,)), PROGRAMME
    ),
    "privacy.Redactor.text": REDACTOR.text,
    "scrubber.Scrubber.add (a display name)": _name,
    "archives.post_from_interchange": _interchange,
    "logs.redact": lambda v: logs.redact(v, ENV),
    "render.md_escape": md_escape,
    "html.html_to_text": html.html_to_text,
    "html.links_in_html": html.links_in_html,
    "html.sanitize_html": html.sanitize_html,
}


@pytest.mark.parametrize("f", FUNCTIONS.values(), ids=FUNCTIONS.keys())
def test_case_39_every_text_function_is_linear(f, texts):
    assert growth(f, *texts) < LIMIT


# The analysis with no prefix to hide behind: its own algorithms must be linear too (sentiment, the
# slowest by far, has its known shape below).
UNCAPPED = {
    "surface_forms": lambda v: text.surface_forms([v]),
    "question_sentence": text.question_sentence,
}


@pytest.mark.parametrize("f", UNCAPPED.values(), ids=UNCAPPED.keys())
def test_case_39_the_analysis_is_linear_beyond_its_prefix_too(f, texts, monkeypatch):
    monkeypatch.setattr(text, "MAX_ANALYSED", len(texts[1]))
    assert growth(f, *texts) < LIMIT


# The exact shapes of the bugs fixed, each alone at full length, where a mixed text would dilute them.
KNOWN: list[tuple[str, Callable[[str], object], Callable[[int], str]]] = [
    ("question: a word and no '?'", editorial.is_question, lambda size: "a" * size),
    # words late in the text: the old check copied all the text before each word, twice
    (
        "sentence starts",
        lambda v: text.surface_forms([v]),
        lambda size: " " * (size * 3 // 4) + "a " * (size // 8),
    ),
    # a word ending in a run of '!': TextBlob copied the word for each '!' it split off
    ("sentiment: 'aaa…!!!'", _uncached_sentiment, lambda size: "a" * size + "!" * (size // 10)),
    ("sanitiser: no-break spaces", text.sanitise_html, lambda size: "\u00a0" * size),
    ("plural: a run of s", tagging.normalise, lambda size: "a" + "s" * size + "a"),
    ("display name: '((('", _name, lambda size: "(" * size),
    ("display name: ' - - -'", _name, lambda size: " -" * (size // 2) + "\nz"),
    # html.parser read each "<a " to the end again; nh3 a text node or attribute of "&" or "\u00a0"
    ("html: '<a <a <a'", html.html_to_text, lambda size: "<a " * (size // 3)),
    ("html: '<<<<'", html.links_in_html, lambda size: "<" * size),
    ("html: '<!--<!--'", html.html_to_text, lambda size: "<!--" * (size // 4)),
    ("html: '</scr</scr'", html.html_to_text, lambda size: "</scr" * (size // 5)),
    # a regex repeat that keeps a way back per "=" grows out of proportion past some 100 kB
    ("html: '<a href= = ='", html.links_in_html, lambda size: "<a href" + "= " * (size // 2)),
    ("html: an attribute of '&'", html.links_in_html, lambda size: '<a href="' + "&" * size),
    ("html: no-break spaces", html.html_to_text, lambda size: "\u00a0" * size),
    ("sanitize_html: '&'", html.sanitize_html, lambda size: "&" * size),
    ("sanitize_html: '©'", html.sanitize_html, lambda size: "<p>" + "©" * size),
    ("bluesky: thousands of facets", _bluesky, lambda size: "a" * size),
    ("http: a Link header of '<<<<'", _link_header, lambda size: "<" * size),
]


@pytest.mark.parametrize(("f", "make"), [k[1:] for k in KNOWN], ids=[k[0] for k in KNOWN])
def test_case_39_the_inputs_that_were_quadratic_are_linear(f, make, monkeypatch):
    monkeypatch.setattr(text, "MAX_ANALYSED", N * GROWTH * 2)
    assert growth(f, make(N), make(N * GROWTH)) < LIMIT


def test_case_39_the_analysis_reads_only_its_documented_prefix():
    head = "We will fund it, wonderful. " * (text.MAX_ANALYSED // 28 + 1)
    tail = " Is it awful? Terrible, horrible #NewTag"
    assert len(head) >= text.MAX_ANALYSED
    assert features.features(head + tail) == features.features(head)
    assert editorial.is_question(tail) and not features.features(head + tail).question
    assert "#newtag" in text.terms(tail) and "#newtag" not in text.terms(head + tail)
    assert text.sentiment(tail)[0] < 0 < text.sentiment(head + tail)[0]
    assert text.question_sentence(head + tail) is None
    assert text.clean_text(head + tail) == head + tail  # shown whole: only the analysis stops


def test_case_39_post_html_is_shown_up_to_its_documented_length():
    short = '<p>Hello <a href="https://example.org/">there</a></p>'
    assert text.sanitise_html(short) == short.replace(
        '">', '" rel="noopener noreferrer nofollow ugc">'
    )
    shown = text.sanitise_html("<p>" + "y" * text.MAX_SHOWN + "</p>")
    assert shown == "<p>" + "y" * (text.MAX_SHOWN - 3) + "</p>…"


def test_case_39_report_on_a_megabyte_post_completes_and_counts_it(project):
    huge = "a" * 400_000 + " we will " + "#KidsRead @" * 30_000 + "'" * 300_000  # no "?"
    lines = [
        {"platform": "mastodon", "id": str(i), "created_at": "2016-11-28T15:10:00Z",
         "author": f"user{i}@example.org", "text": body, "url": f"https://example.org/{i}"}
        for i, body in enumerate([huge, "Brilliant session on the Leg Club", "Is it recorded?"])
    ]  # fmt: skip
    path = project / "huge.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert len(huge) >= 1_000_000

    def run(*args: str) -> str:
        result = invoke(project, *args)
        assert result.exit_code == 0, result.output
        return result.output

    assert "3 new" in run("import", str(path))
    run("tag")
    run("report")
    story = json.loads((project / "site" / "story.json").read_text(encoding="utf-8"))
    assert story["overview"]["posts"] == 3
