"""Safeguarding in the story (issue 12; docs/privacy.md, "Safeguarding"): personal identifiers never
republished, flagged personal health disclosures never highlights, quotes or key points until an
organiser pins them, and roles read from profiles only ever used to protect."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from aggregator.config import PrivacyConfig
from aggregator.pipeline import tag
from aggregator.safeguarding import disclosure, role_from_profile
from reports.export import export
from reports.export_options import make_options
from storage.db import open_database
from storage.models import PostAnalysis
from tests.storyhelp import (
    SAFEGUARDING,
    pin,
    post,
    project_copy,
    records,
    safeguarding_posts,
    store,
    url,
    write,
)

NHS, PHONE, EMAIL = "943 476 5919", "07700 900123", "jo.bloggs@example.net"
FORMS = (NHS, NHS.replace(" ", ""), PHONE, PHONE.replace(" ", ""), EMAIL, "jo.bloggs")


def identifiers(config):
    """A post with all three identifiers in its text, HTML, display name and alt text (pinned by
    the tests, so that the story shows it), and another with a phone number."""
    text = f"Happy to help with the Leeds pilot: NHS number {NHS}, call {PHONE} or write to {EMAIL}"
    return [
        post(config, "session-1", 5, text, author="jo@example.org", author_name=f"Jo {PHONE}",
             html=f"<p>{text} <a href='mailto:{EMAIL}'>mail me</a></p>", likes=90,
             media=[{"url": "https://example.org/a.png", "type": "image", "alt": f"My card: {EMAIL}"}]),
        post(config, "session-1", 10, f"The Leeds pilot is open to carers: text {PHONE} to join today",
             author="c@example.org", likes=10),
    ]  # fmt: skip


def test_identifiers_posted_in_a_session_appear_nowhere_in_the_story(engine, config):
    posts = identifiers(config)
    store(engine, config, *posts)
    pin(engine, posts[0].id)
    out = write(engine, config)
    for form in FORMS:
        assert form not in out.everything, form
    assert "[NHS number removed]" in out.html and "\\[phone removed\\]" in out.markdown
    # once per post or name shown: the first post (its text, HTML and alt text), its author's
    # name, and the other post, on its card or as a key point
    redacted = out.json["overview"]["redacted"]
    assert redacted == {"nhs_number": 1, "phone": 3, "email": 1}
    assert ("Personal identifiers removed from the posts shown: 1 NHS number, 3 phone numbers and "
            "1 e-mail address." in out.json["overview"]["quality"])  # fmt: skip


def test_with_redaction_turned_off_the_identifiers_are_shown(engine, config):
    posts = identifiers(config)
    store(engine, config, *posts)
    pin(engine, posts[0].id)
    out = write(engine, replace(config, privacy=PrivacyConfig(redact_identifiers=False)))
    assert all(form in out.everything for form in (NHS, PHONE, EMAIL))
    assert out.json["overview"]["redacted"] == {}


def test_an_organisations_published_helpline_is_not_redacted(engine, config):
    store(engine, config, post(config, "session-2", 3, "Carers can call the helpline on 0300 123 1053",
                               author="org@example.org", likes=5))  # fmt: skip
    assert "0300 123 1053" in write(engine, config).html


DISCLOSURE = "My son was diagnosed with autism at four and CAMHS failed him completely"


def test_a_flagged_disclosure_is_never_a_highlight_or_key_point_until_pinned(tmp_path):
    config = project_copy(tmp_path)
    config = replace(config, curation=tmp_path / "curation.toml")
    (tmp_path / "curation.toml").write_text("")
    disclosed = post(config, "session-4", 1, DISCLOSURE, author="parent@example.org", likes=900)
    others = [post(config, "session-4", 5 + n, text, author=f"o{n}@example.org", likes=n)
              for n, text in enumerate(["Improve Care Now shows families leading research",
                                        "Families improving services with children, not for them",
                                        "Michael Seres on innovating from a patient's experience"])]  # fmt: skip
    engine = open_database(config.database_url)
    store(engine, config, disclosed, *others)

    session = write(engine, config).part("session-4")
    shown = [*session["highlights"], *session["questions"], *session["actions"]]
    assert disclosed.id not in {p["post_id"] for p in shown} and len(session["highlights"]) >= 1
    assert "autism" not in json.dumps(session["key_points"]) + session["narrative"]

    (tmp_path / "curation.toml").write_text(f'[[highlight]]\nid = "{disclosed.id}"\n')
    tag(engine, config)  # the next run
    pinned = write(engine, config).part("session-4")["highlights"]
    assert pinned[0]["post_id"] == disclosed.id and pinned[0]["pinned"]
    engine.dispose()


@pytest.mark.parametrize(
    ("profile", "shown"), [(None, True), ("<p>Carer for my mum &amp; dad</p>", False)]
)
def test_a_carers_profile_makes_the_disclosure_rules_more_careful(engine, config, profile, shown):
    raw = {"account": {"note": profile}} if profile else {}
    weak = post(config, "session-2", 1, "Mum was diagnosed with dementia last year and the memory clinic was a lifeline",
                author="carer@example.org", likes=50, raw=raw)  # fmt: skip
    store(engine, config, weak)
    with engine.connect() as conn:
        role = conn.execute(select(PostAnalysis.__table__.c.role)).scalar_one()
    assert role == (None if profile is None else "patient_carer")
    highlights = write(engine, config).part("session-2")["highlights"]
    assert (weak.id in {h["post_id"] for h in highlights}) is shown


def test_roles_are_never_exported_or_published(engine, config, tmp_path):
    raw = {"account": {"note": "Patient leader, living with MS"}}
    store(engine, config, post(config, "session-3", 2, "The Leg Club is brilliant", author="p@example.org",
                               likes=3, raw=raw))  # fmt: skip
    out = write(engine, config)
    with (tmp_path / "posts.jsonl").open("w", encoding="utf-8") as fh:
        export(engine, config, fh, make_options(config, "jsonl", env={}))
    exported = (tmp_path / "posts.jsonl").read_text()
    assert "The Leg Club is brilliant" in out.html and "The Leg Club" in exported
    for text in (out.everything, exported):
        assert "patient_carer" not in text


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """The safeguarding labelled set (420 posts, identifiers and disclosures among near-misses),
    every post well liked and spread over the sessions, each author's profile from its bio."""
    folder = tmp_path_factory.mktemp("safeguarding")
    config = project_copy(folder)
    engine = open_database(config.database_url)
    store(engine, config, *safeguarding_posts(config))
    yield write(engine, config)
    engine.dispose()


def test_on_the_labelled_set_no_identifier_reaches_the_story(labelled):
    found = [i["text"] for r in records(SAFEGUARDING) for i in r["identifiers"]]
    assert len(found) > 100
    assert [text for text in found if text in labelled.everything] == []


def test_on_the_labelled_set_no_flagged_disclosure_is_shown_or_said(labelled):
    """Every labelled disclosure the detector flags (a few forms it does not read are listed in
    docs/privacy.md, "What is not caught"), read as the story reads it: with the poster's role."""
    disclosed = {url(r["id"]) for r in records(SAFEGUARDING)
                 if r["disclosure"] and disclosure(r["text"], role_from_profile(r.get("bio")))}  # fmt: skip
    assert len(disclosed) >= 100
    parts = labelled.json["parts"]
    shown = [p for part in parts for k in ("highlights", "questions", "actions") for p in part[k]]
    assert len(shown) >= 40
    assert [p["text"] for p in shown if p["url"] in disclosed] == []
    cited = {c["url"] for part in parts for k in part["key_points"] for c in k["cites"][:1]}
    assert cited and not cited & disclosed
