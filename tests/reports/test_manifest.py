"""FILE.manifest.json: what an export holds, where it came from, and its known gaps."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aggregator.config import load_config
from reports.columns import COLUMNS
from storage.db import open_database
from storage.queries import record_outcome, start_run
from tests.helpers import invoke, read_csv


def test_manifest_says_what_the_export_holds(loaded):
    project = loaded

    engine = open_database(load_config(project / "config.toml").database_url)
    run = start_run(engine, "collect")
    now = datetime(2016, 11, 29, 2, 5, tzinfo=UTC)
    record_outcome(engine, run, {"source": "mastodon", "status": "failed", "error": "HTTP 503 from mastodon.social",
                                 "warnings": ["gap: reached back only to 2016-11-28"], "started_at": now, "finished_at": now})  # fmt: skip
    engine.dispose()
    out = project / "session.csv"
    result = invoke(
        project,
        "export",
        "-o",
        str(out),
        "--manifest",
        "--session",
        "session-3",
        "--hashtag",
        "CoPro16",
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((project / "session.csv.manifest.json").read_text(encoding="utf-8"))
    rows = read_csv(out.read_text(encoding="utf-8"))
    assert (
        manifest["counts"]["posts"] == len(rows) == sum(manifest["counts"]["by_platform"].values())
    )
    assert manifest["counts"]["by_session"] == {"session-3": len(rows)}
    assert manifest["filters"]["session"] == ["session-3"] and manifest["filters"]["hashtag"] == [
        "copro16"
    ]
    assert manifest["collection"]["first_created_at"] == min(r["created_at"] for r in rows)
    assert manifest["collection"]["last_collected_at"] == max(r["collected_at"] for r in rows)
    assert manifest["event"]["name"] == load_config(project / "config.toml").event.name
    assert {s["name"] for s in manifest["sources"]} >= {"example", "bluesky"}
    assert "password_env" not in json.dumps(manifest["sources"])
    gap = manifest["known_gaps"][0]
    assert gap["source"] == "mastodon" and "HTTP 503" in gap["error"] and gap["warnings"]
    assert list(manifest["columns"]) == list(COLUMNS)
    assert manifest["pseudonymised"] is False and manifest["tool"]["version"]
