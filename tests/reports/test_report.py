"""The report end to end: the bundled example's story through the real CLI (HTML, Markdown and JSON
with one structure), the analyse stage, and a large event keeping the page a sensible size."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from datetime import timedelta

from markupsafe import escape
from sqlalchemy import func, select

from aggregator.pipeline import analyse, collect, tag
from connectors.base import Page, Post
from reports.render import md_escape, write_report
from reports.story import Part, build_story
from storage.models import PostAnalysis, PostRow
from storage.queries import save_page
from tests.helpers import EXAMPLE, invoke

with EXAMPLE.open(encoding="utf-8") as _fh:
    LABELS = Counter(json.loads(line)["expected_session"] for line in _fh)


def test_report_command_writes_the_three_files_and_names_them(example_loaded):
    project = example_loaded
    result = invoke(project, "report")
    assert result.exit_code == 0, result.output
    site = project / "site"
    for fmt, name in (("html", "index.html"), ("markdown", "report.md"), ("json", "story.json")):
        assert f"{fmt}: {site / name}" in result.output
        assert (site / name).stat().st_size > 1000
    assert not list(site.glob(".*.tmp"))


def test_report_into_an_unusable_folder_fails_in_one_line(example_loaded):
    project = example_loaded
    (project / "site").write_text("a file where the report folder should be")
    result = invoke(project, "report")
    assert result.exit_code == 1
    assert (
        result.output.startswith("Error: cannot write the report into")
        and result.output.count("\n") == 1
    )


def test_the_bundled_example_reads_as_a_story_in_all_three_formats(example_loaded):
    project = example_loaded
    assert invoke(project, "report").exit_code == 0
    site = project / "site"
    html, markdown = (site / "index.html").read_text(), (site / "report.md").read_text()
    story = json.loads((site / "story.json").read_text())
    config_ids = [
        m for m in re.findall(r'^id = "([^"]+)"', (project / "config.toml").read_text(), re.M)
    ]
    ids = ["before", *config_ids, "after"]
    assert len(config_ids) == 9

    # JSON: the parts in programme order, each a whole Part, counts matching the labelled example
    assert story["schema"] == 2 and [p["id"] for p in story["parts"]] == ids
    assert set(story["parts"][1]) == {f.name for f in dataclasses.fields(Part)}
    assert story["overview"]["posts"] == 400 == sum(p["posts"] for p in story["parts"])
    for part in story["parts"]:
        expected = LABELS[None if part["kind"] != "session" else part["id"]]
        if part["kind"] == "session":
            assert abs(part["posts"] - expected) <= 2, part["id"]
            assert part["highlights"] and part["themes"] and part["activity"]["peak"]
            assert all(h["url"].startswith("https://example.org/") for h in part["highlights"])
        assert f"{part['posts']} posts" in part["narrative"] or part["posts"] < 2, part["narrative"]
    assert story["parts"][0]["posts"] + story["parts"][-1]["posts"] == LABELS[None]

    # HTML: every part in the same order, with its title, narrative and the same counts as the JSON
    positions = [html.index(f'id="{i}" aria-labelledby="{i}-title"') for i in ids]
    assert positions == sorted(positions)
    for part in story["parts"]:
        section = html[html.index(f'id="{part["id"]}" aria-labelledby') :]
        # the paragraph: its key points (each with links to its posts before its full stop),
        # then its numbers
        said = [k["text"] for k in part["key_points"]]
        assert part["narrative"] == " ".join([*said, part["summary"]])
        for text in [*(t.removesuffix(".") for t in said), part["summary"]]:
            assert str(escape(text)) in section
        assert f'<a href="#{part["id"]}">' in html
    assert "<svg" in html and 'role="img"' in html and "<figcaption>" in html and "<table" in html

    # Markdown: the same parts in the same order, each with its narrative
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert len(headings) == 12  # the day at a glance, then the 11 parts
    titles = [p["title"] for p in story["parts"]]
    assert [h[3:].rsplit(" · ", 1)[-1] for h in headings[1:]] == [md_escape(t) for t in titles]
    for part in story["parts"]:
        assert all(
            md_escape(t) in markdown
            for t in [part["summary"], *(k["text"] for k in part["key_points"])]
        )


def test_analyse_runs_once_per_post_and_again_only_for_a_changed_post(engine, config):
    collect(engine, config)
    assert analyse(engine) == 400
    assert analyse(engine) == 0
    table = PostRow.__table__
    with engine.connect() as conn:
        missing = conn.execute(
            select(func.count()).where(table.c.sentiment_polarity.is_(None))
        ).scalar_one()
        analysed = conn.execute(
            select(func.count()).select_from(PostAnalysis.__table__)
        ).scalar_one()
        first = conn.execute(select(table).limit(1)).one()
    assert (missing, analysed) == (0, 400)
    edited = Post(
        first.platform, first.post_id, first.created_at, first.author, "Now edited: who will act?"
    )
    save_page(engine, "example", Page([edited]))
    assert analyse(engine) == 1
    with engine.connect() as conn:
        row = conn.execute(
            select(PostAnalysis.__table__).where(PostAnalysis.__table__.c.post_pk == first.id)
        ).one()
    # a question, and no pledge: "will" in a question commits nobody (docs/report.md)
    assert row.question and not row.action and "edited" in row.terms


def test_a_large_event_shows_samples_and_says_how_many_there_were(engine, config, tmp_path):
    start = config.sessions[1].start
    what = ["Funding", "Training", "Listening", "Trust", "Data", "Peer support", "Co-design"]
    where = ["carers", "GPs", "schools", "wards", "councils", "pharmacies", "charities", "families",
             "hospices", "nurses", "youth groups"]  # fmt: skip
    how = ["this year", "in Leeds", "at scale", "online", "locally", "by spring", "with patients",
           "for everyone", "from day one", "every week", "on the ward", "at home", "in practice"]  # fmt: skip
    posts = [
        # each text its own (idea {i}): the same words again would be a copy; each account shares
        # a link once (one link three times from an account is spam)
        Post("mastodon", f"big-{i}", start + timedelta(seconds=i), f"user{i % 700}@example.org",
             f"Idea {i}: {what[i % 7]} for {where[i % 11]} {how[i % 13]}{'?' if i % 5 == 0 else ''}"
             f"{' we will act' if i % 9 == 0 else ''}",
             url=f"https://example.org/@x/{i}", likes=i % 13, links=[f"https://example.org/doc/{i // 700}"])
        for i in range(3000)
    ]  # fmt: skip
    save_page(engine, "big", Page(posts))
    tag(engine, config)
    analyse(engine)
    files = write_report(build_story(engine, config), tmp_path / "site")
    html = files["html"].read_text()
    session = json.loads(files["json"].read_text())["parts"][2]
    assert session["posts"] == 3000 and "3,000 posts" in session["narrative"]
    assert len(session["highlights"]) <= 6 and len(session["questions"]) <= 5
    # every fifth post asks, every ninth pledges; the 67 that do both are pledges (docs/report.md)
    assert session["questions_total"] == 600 - 67 and session["actions_total"] == 334
    assert "(5 of 533)" in html and "3,000" in html
    assert len(html) < 250_000 and files["json"].stat().st_size < 250_000
