"""Publishing quality (issue 11): each post's language and direction, Markdown links that say whose
post and when, no block-character sparklines, themes as a list, and the public audience."""

from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from aggregator.pipeline import analyse, tag
from connectors.base import Page, Post
from reports.lang import PAGE_LANG, Language, post_language
from reports.render import write_report
from reports.story import build_story
from storage.models import Assignment
from storage.queries import save_page
from tests.helpers import invoke, shipped_project

WELSH = "Diolch yn fawr iawn i bawb am sesiwn wych heddiw, roedd y trafodaethau yn ysbrydoledig"
URDU = "آج کی نشست میں مریضوں کی آواز کو مرکز میں رکھنے پر بہت اچھی گفتگو ہوئی"
ENGLISH = "A really thoughtful session on how carers shape the services they rely on"
BLOCKS = "▁▂▃▄▅▆▇█"


@pytest.fixture(scope="module")
def example(tmp_path_factory, loaded_databases) -> Path:
    """The bundled example (loaded once a run) reported once for this module's tests."""
    folder = shipped_project(tmp_path_factory.mktemp("example"))
    assert invoke(loaded_databases.copy_into(folder, people=False), "report").exit_code == 0
    return folder / "site"


def shown_report(engine, config, tmp_path, *posts):
    """Store `posts`, pin them all (so every one is shown) and write the report."""
    save_page(engine, "test", Page(list(posts)))
    tag(engine, config)
    analyse(engine)
    with engine.begin() as conn:
        conn.execute(update(Assignment.__table__).values(highlight=True))
    files = write_report(build_story(engine, config), tmp_path / "site")
    return {fmt: path.read_text(encoding="utf-8") for fmt, path in files.items()}


def at(config, minutes: int):
    return config.sessions[0].start + timedelta(minutes=minutes)


# -- language and direction -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "given", "expected"),
    [
        (ENGLISH, "cy", Language("cy", "ltr")),  # the source's tag wins
        (ENGLISH, "en_gb", Language("en-GB", "ltr")),  # in BCP 47 form
        (ENGLISH, "pt-br", Language("pt-BR", "ltr")),
        (URDU, None, Language("ur", "rtl")),  # detected, and Urdu is written right to left
        (WELSH, "und", Language("cy", "ltr")),  # "undetermined" is no tag: detected
        (WELSH, "qme", Language("cy", "ltr")),  # X's "media only" code: detected
        ("שלום לכולם, כנס מצוין היום, תודה רבה למארגנים", None, Language("he", "rtl")),
        ("Diolch! 🎉 #CoPro16 @helen", None, Language(PAGE_LANG, "auto")),  # too short to tell
        ("😀😀😀 https://example.org/a-very-long-link-with-many-letters-in-it", None,
         Language(PAGE_LANG, "auto")),  # links and emoji are not words
        (ENGLISH, 'en" onmouseover="alert(1)', Language("en", "ltr")),  # junk tag: detected
        (URDU, "ur-Arab-PK", Language("ur-Arab-PK", "rtl")),
    ],
)  # fmt: skip
def test_a_posts_language_comes_from_its_source_else_from_its_text(text, given, expected):
    assert post_language(text, given) == expected


def test_language_is_detected_from_the_start_of_a_long_post():
    welsh, english = f"{WELSH}. " * 12, f"{ENGLISH}. " * 12  # each over a thousand characters
    assert post_language(welsh + english * 25, None).lang == "cy"
    assert post_language(english + welsh * 25, None).lang == "en"


def test_every_post_card_and_quote_carries_lang_and_dir_in_html_and_json(engine, config, tmp_path):
    out = shown_report(
        engine, config, tmp_path,
        Post("mastodon", "w", at(config, 5), "rhys@example.org", WELSH, url="https://example.org/@r/1"),
        Post("bluesky", "u", at(config, 6), "nadia.example.org", URDU + "?", url="https://example.org/@n/2"),
        Post("x", "e", at(config, 7), "sam", ENGLISH, url="https://example.org/@s/3", lang="en"),
    )  # fmt: skip
    story = json.loads(out["json"])
    posts = {p["post_id"]: p for part in story["parts"] for p in part["highlights"]}
    assert {k: (p["lang"], p["dir"]) for k, p in posts.items()} == {
        "w": ("cy", "ltr"), "u": ("ur", "rtl"), "e": ("en", "ltr"),
    }  # fmt: skip
    page = out["html"]
    assert re.search(r'<div class="body" lang="cy" dir="ltr"><p>Diolch yn fawr', page)
    assert re.search(r'<div class="body" lang="ur" dir="rtl"><p>آج', page)
    questions = [p for part in story["parts"] for p in part["questions"]]
    assert [(q["lang"], q["dir"]) for q in questions] == [("ur", "rtl")]
    assert re.search(r'<blockquote lang="ur" dir="rtl"><p>آج', page)
    cards = re.findall(r'<div class="body"( lang="[^"]+" dir="[^"]+")?', page)
    assert cards and all(cards), "a card without lang and dir"


# -- Markdown and lists -----------------------------------------------------------------------


def test_markdown_links_say_whose_post_and_when(engine, config, tmp_path):
    out = shown_report(
        engine, config, tmp_path,
        Post("mastodon", "a", at(config, 25), "alice@example.org", ENGLISH, url="https://example.org/@alice/1"),
        Post("feed", "b", at(config, -60 * 24 * 3), "News Desk", WELSH, author_name="News Desk",
             url="https://news.example/story"),
    )  # fmt: skip
    markdown = out["markdown"]
    start = at(config, 25).astimezone(config.event.timezone)
    assert (
        f"[post by @alice@example.org at {start:%H:%M}](https://example.org/@alice/1)" in markdown
    )
    early = at(config, -60 * 24 * 3).astimezone(config.event.timezone)
    label = f"post by News Desk on {early:%a} {early.day} {early:%b} at {early:%H:%M}"
    assert f"[{label}](https://news.example/story)" in markdown
    assert "view post" not in markdown.lower()


def test_the_markdown_has_no_block_sparklines_and_says_when_it_was_busiest(example):
    markdown = (example / "report.md").read_text(encoding="utf-8")
    assert not set(BLOCKS) & set(markdown)
    story = json.loads((example / "story.json").read_text(encoding="utf-8"))
    busiest = [p for p in story["parts"] if p["kind"] == "session" and p["activity"]["peak"]]
    for part in busiest:
        a = part["activity"]
        assert f"**Busiest:** {a['peak']} ({a['peak_count']} post" in markdown, part["id"]


def test_themes_are_a_list_for_screen_readers(example):
    page = (example / "index.html").read_text(encoding="utf-8")
    story = json.loads((example / "story.json").read_text(encoding="utf-8"))
    for part in story["parts"]:
        if not part["themes"]:
            continue
        lists = re.findall(
            rf'<ul class="chips" aria-labelledby="{part["id"]}-themes">(.*?)</ul>', page, re.S
        )
        assert len(lists) == 1, part["id"]
        items = re.findall(r"<li>(.*?)</li>", lists[0])
        assert len(items) == len(part["themes"])
        assert f'id="{part["id"]}-themes">Themes<' in page


# -- audience ---------------------------------------------------------------------------------


def test_organisers_see_about_this_data_and_the_public_page_leaves_it_out(example, tmp_path):
    page = (example / "index.html").read_text(encoding="utf-8")
    story = json.loads((example / "story.json").read_text(encoding="utf-8"))
    assert story["audience"] == "organisers" and story["overview"]["quality"]
    assert "About this data" in page and "About this data" in (example / "report.md").read_text()

    folder = example.parent
    cfg = folder / "config.toml"
    public = tmp_path / "public"
    public.mkdir()
    text = cfg.read_text(encoding="utf-8").replace(
        '[report]\noutput = "site"', '[report]\noutput = "public-site"\naudience = "public"'
    )
    (public / "config.toml").write_text(
        text.replace(
            'database = "data/aggregator.db"', f'database = "{folder / "data" / "aggregator.db"}"'
        ),
        encoding="utf-8",
    )
    shutil.copytree(folder / "examples", public / "examples")
    result = invoke(public, "report")
    assert result.exit_code == 0, result.output
    site = public / "public-site"
    page, markdown = (site / "index.html").read_text(), (site / "report.md").read_text()
    shown = json.loads((site / "story.json").read_text(encoding="utf-8"))
    assert "About this data" not in page and "About this data" not in markdown
    assert shown["audience"] == "public" and "quality" not in shown["overview"]
    assert shown["overview"]["posts"] == story["overview"]["posts"]  # the story itself is the same
    assert [p["narrative"] for p in shown["parts"]] == [p["narrative"] for p in story["parts"]]


def test_a_bad_report_audience_is_a_config_error_naming_the_key(project):
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text().replace("[report]\n", '[report]\naudience = "everyone"\n'))
    result = invoke(cfg, "status")
    assert result.exit_code == 2
    assert "report.audience" in result.output and '"public"' in result.output
