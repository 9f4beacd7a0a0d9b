"""Reliability case 26: a hashtag is one thing whatever its case, width, Unicode form or hidden
characters, for the session cues and for the event's own hashtags (docs/tagging.md)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import Config, load_config
from aggregator.tagging import Programme, TagInput, decide, run_together

# The shipped programme moved to a zone 5 hours behind UTC: a mistake between local and UTC times
# puts a post in the wrong session.
ZONE = ZoneInfo("America/New_York")


def local(hh: int, mm: int = 0) -> datetime:
    return datetime(2016, 11, 28, hh, mm, tzinfo=ZONE)


def programme(project: Path, **hashtags: list[str]) -> Programme:
    """The shipped config in ZONE, with `hashtags` added to the sessions named (session_1=[...])."""
    path = project / "config.toml"
    text = path.read_text().replace('timezone = "Europe/London"', f'timezone = "{ZONE.key}"')
    for name, tags in hashtags.items():
        sid = name.replace("_", "-")
        listed = ", ".join(f'"{t}"' for t in tags)
        text = text.replace(f'id = "{sid}"\n', f'id = "{sid}"\nhashtags = [{listed}]\n', 1)
    path.write_text(text)
    config: Config = load_config(path)
    assert config.event.timezone == ZONE
    assert all(s.start.utcoffset() is not None for s in config.sessions)
    return Programme.from_config(config)


def post(text: str, when: datetime, **kw) -> TagInput:
    return TagInput("1", when.astimezone(UTC), text, **kw)


@pytest.mark.parametrize(
    "written",
    [
        "#KidsRead",
        "#kidsread",
        "#KIDSREAD",
        "#kIDSrEAD",
        "＃KidsRead",  # fullwidth number sign
        "#ＫｉｄｓＲｅａｄ",  # fullwidth letters
        "＃ｋｉｄｓｒｅａｄ",
        "#Kids\u200bRead",  # zero-width space
        "#KIDS\u2060READ",  # word joiner
        "#kids\u00adread",  # soft hyphen
        "#kids_read",
        "#KidsReads",
    ],
)
def test_case_26_a_camel_case_hashtag_cue_matches_the_hashtag_in_any_form(project, written):
    prog = programme(project, session_1=["KidsRead"])
    # posted during session 3 (15:00-16:00 in New York): only the cue can say session 1
    d = decide(post(f"Inspiring {written} work", local(15, 30)), prog)
    assert (d.session_id, d.score, d.reason) == ("session-1", 1.0, "hashtag '#KidsRead'")


@pytest.mark.parametrize("written", ["KIDSREAD", "#kidsread", "＃ｋｉｄｓｒｅａｄ"])
def test_case_26_a_hashtag_given_by_the_platform_only_is_matched_too(project, written):
    prog = programme(project, session_1=["KidsRead"])
    d = decide(post("Inspiring work", local(15, 30), hashtags=[written]), prog)
    assert d.session_id == "session-1" and d.reason == "hashtag '#KidsRead'"


@pytest.mark.parametrize("written", ["#KidsRead", "#KIDSREAD", "#Kids\u200bRead"])
def test_case_26_a_lower_case_cue_matches_the_hashtag_in_camel_case(project, written):
    prog = programme(project, session_1=["kidsread"])
    d = decide(post(f"Inspiring {written}", local(15, 30)), prog)
    assert (d.session_id, d.reason) == ("session-1", "hashtag '#kidsread'")


@pytest.mark.parametrize("written", ["#skidsread", "#Kids", "#ReadKids", "kids are reading"])
def test_case_26_other_words_are_not_the_hashtag(project, written):
    prog = programme(project, session_1=["KidsRead"])
    d = decide(post(f"Inspiring {written}", local(15, 30)), prog)
    assert (d.session_id, d.reason) == ("session-3", "posted during session-3")


def test_case_26_one_hashtag_in_two_cases_is_one_shared_cue_settled_by_local_time(project):
    prog = programme(project, session_1=["KidsRead"], session_2=["kidsread"])
    [cue] = [c for c in prog.cues if c.label.casefold() == "#kidsread"]
    assert cue.sessions == ("session-1", "session-2")
    # 14:30 in New York is 19:30 UTC: session 2 is live; read as UTC it would be session 7
    d = decide(post("#KIDSREAD", local(14, 30)), prog)
    assert d.session_id == "session-2"
    assert (
        d.reason == "hashtag '#KidsRead' (shared by session-1, session-2): posted during session-2"
    )
    before = decide(post("#kidsread", local(11, 0)), prog)  # 16:00 UTC, before every session
    assert (before.session_id, before.score) == ("session-1", 0.7)


@pytest.mark.parametrize("listed", ["copro16", "COPRO16", "CoPro16", "ＣｏＰｒｏ１６"])
def test_case_26_the_event_hashtag_in_any_form_is_never_a_cue(project, listed):
    prog = programme(project, session_1=[listed])
    assert not [c for c in prog.cues if "session-1" in c.sessions and c.kind == "hashtag"]
    d = decide(post("Great day #COPRO16 #copro16", local(17, 10)), prog)
    assert (d.session_id, d.reason) == ("session-5", "posted during session-5")


FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in map(chr, range(0x21, 0x7F))}
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e"]
LETTERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé0123456789", min_size=1, max_size=24)


@settings(max_examples=100, deadline=None)
@given(LETTERS, st.data())
def test_case_26_case_width_unicode_form_and_hidden_characters_change_nothing(tag, data):
    chars = []
    for c in tag:
        c = c.upper() if data.draw(st.booleans()) else c
        c = FULLWIDTH.get(c, c) if data.draw(st.booleans()) else c
        chars.append(
            c + (data.draw(st.sampled_from(INVISIBLE)) if data.draw(st.booleans()) else "")
        )
    form = data.draw(st.sampled_from(["NFC", "NFD", "NFKC", "NFKD"]))
    written = unicodedata.normalize(form, data.draw(st.sampled_from(["#", "＃"])) + "".join(chars))
    assert run_together(written) == run_together(tag)
    assert run_together(written) == run_together(run_together(written))  # one form, a fixed point
