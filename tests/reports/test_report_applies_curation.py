"""`aggregator report` applies a curation file changed since the last tagging: an organiser pastes
a line from the review page, runs `report`, and sees the change."""

from __future__ import annotations

import json

from aggregator.config import load_config
from aggregator.pipeline import collect, report, tag
from storage.db import open_database


def highlights(story: dict) -> set[str]:
    return {h["post_id"] for part in story["parts"] for h in part["highlights"]}


def test_a_pasted_exclusion_shows_on_the_next_report(project):
    cfg = project / "config.toml"
    text = cfg.read_text(encoding="utf-8")
    assert '# curation = "curation.toml"' in text
    cfg.write_text(text.replace('# curation = "curation.toml"', 'curation = "curation.toml"'))
    (project / "curation.toml").write_text("", encoding="utf-8")
    config = load_config(cfg)
    engine = open_database(config.database_url)
    try:
        collect(engine, config)
        tag(engine, config)
        files = report(engine, config)
        before = json.loads(files["json"].read_text(encoding="utf-8"))
        chosen = sorted(highlights(before))[0]
        (project / "curation.toml").write_text(f'[[exclude]]\nid = "{chosen}"\n', encoding="utf-8")
        after = json.loads(report(engine, config)["json"].read_text(encoding="utf-8"))
    finally:
        engine.dispose()
    assert chosen not in highlights(after)
    assert highlights(after)  # the rest of the story is still there
