from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aggregator.config import load_config
from aggregator.tagging import Decision, Programme, TagInput, decide, normalise
from connectors.base import parse_time
from tests.conftest import EXAMPLE, ROOT


@pytest.fixture(scope="module")
def programme() -> Programme:
    return Programme.from_config(load_config(ROOT / "config.toml"))


def at(hh: int, mm: int = 0, day: int = 28) -> datetime:
    return datetime(2016, 11, day, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("#LegClub", "Leg Club"),
        ("@BerylInstitute", "Beryl Institute"),
        ("Queen's Award", "Queens award"),
        ("Coventry & Warwickshire", "coventry and warwickshire"),
        ("ＬＥＧ　ＣＬＵＢ", "leg club"),
        ("Leg\u200bClub", "LegClub"),
        ("self-management", "self management"),
    ],
)
def test_normalise_makes_forms_meet(left, right):
    assert normalise(left).replace(" ", "") == normalise(right).replace(" ", "")


def test_distinctive_cue_wins_whatever_the_time(programme):
    d = decide(TagInput("1", at(19, 50), "Still thinking about the Leg Club"), programme)
    assert d.session_id == "session-3"
    assert "Leg Club" in d.reason


def test_shared_cue_is_settled_by_time(programme):
    text = "Brilliant from Helen Bevan"
    assert decide(TagInput("1", at(12, 30), text), programme).session_id == "panel-opening"
    assert decide(TagInput("2", at(19, 50), text), programme).session_id == "panel-closing"
    # between her two panels: the latest one already started
    assert decide(TagInput("3", at(15, 30), text), programme).session_id == "panel-opening"


def test_uncued_post_goes_to_the_live_session_and_boundaries_are_start_inclusive(programme):
    assert decide(TagInput("1", at(13, 0), "Great stuff"), programme).session_id == "session-1"
    assert decide(TagInput("2", at(12, 59), "Great stuff"), programme).session_id == "panel-opening"


def test_reply_without_cue_follows_its_parent(programme):
    parent = Decision("session-2", 1.0, "keyword 'National Voices'")
    d = decide(TagInput("1", at(15, 15), "Agreed!", reply_to="p"), programme, parent)
    assert d.session_id == "session-2"
    assert "reply to p" in d.reason


def test_outside_every_session_is_general(programme):
    d = decide(TagInput("1", at(10, 0, day=29), "Thanks all"), programme)
    assert d.session_id is None


def test_naive_and_aware_times_agree(programme):
    naive = decide(TagInput("1", datetime(2016, 11, 28, 14, 30), "Hello"), programme)
    aware = decide(TagInput("1", at(14, 30), "Hello"), programme)
    assert naive == aware


def test_accuracy_on_the_labelled_example(programme):
    with EXAMPLE.open(encoding="utf-8") as fh:
        rows = sorted((json.loads(line) for line in fh), key=lambda r: r["created_at"])
    decided: dict[str, Decision] = {}
    wrong = []
    for r in rows:
        post = TagInput(r["id"], parse_time(r["created_at"]), r["text"], reply_to=r["reply_to"])
        d = decide(post, programme, decided.get(r["reply_to"] or ""))
        decided[r["id"]] = d
        if d.session_id != r["expected_session"]:
            wrong.append(
                f"{r['id']} expected {r['expected_session']} got {d.session_id}: {r['text']}"
            )
    accuracy = 1 - len(wrong) / len(rows)
    assert accuracy >= 0.99, "\n".join(wrong)
