"""The story of the same posts is the same file whatever Python's hash seed: no key point, theme,
list or tie may follow the order of a set or of a dict built from one (str hashes change from one
process to the next unless PYTHONHASHSEED is fixed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import EXAMPLE, ROOT, shipped_project, write_jsonl

# What `aggregator import` (each archive) then `aggregator report --review` do
# (pipeline.import_file, pipeline.report), with the story's "written on" time fixed so that the
# files can be compared byte for byte.
BUILD = """
import dataclasses, sys
from datetime import UTC, datetime
from pathlib import Path

from aggregator.clock import EventClock
from aggregator.config import load_config
from aggregator.curation import load_curation
from aggregator.pipeline import analyse, import_file, tag, writing
from reports.render import write_report, write_review
from reports.review import build_review
from reports.story import tell

config = load_config(sys.argv[1])
for archive in sys.argv[2:]:
    import_file(config, Path(archive))
with writing(config) as engine:
    tag(engine, config)
    analyse(engine)
    told = tell(engine, config, load_curation(config))
written = EventClock(config.event.timezone).shown(datetime(2016, 12, 1, 2, tzinfo=UTC))
told.story = dataclasses.replace(told.story, generated_at=written)
write_report(told.story, config.report_output)
write_review(build_review(told, config), config.report_output / "review.html")
"""
FILES = ("story.json", "index.html", "report.md", "review.html")
# Posts whose links and hashtags are each used once: every list of them is all ties.
TIES = [
    {"platform": "mastodon", "id": str(n), "created_at": f"2016-11-28T1{n}:05:00Z",
     "author": f"{who}@example.org", "url": f"https://example.org/@{who}/{n}",
     "text": f"{text} #CoPro16 {tags}", "links": links}
    for n, (who, text, tags, links) in enumerate([
        ("ann", "Peer support made the difference for our whole family this year", "#Zeta #Alpha #Mu",
         ["https://b.example/peer", "https://a.example/support"]),
        ("bo", "Carers know what works and should be asked first, every time", "#Kappa #Beta #Rho",
         ["https://d.example/carers", "https://c.example/works"]),
        ("cy", "Planning care together takes longer and lasts much longer too", "#Omega #Gamma #Nu",
         ["https://f.example/planning", "https://e.example/together"]),
    ], start=1)
]  # fmt: skip


def _build(project: Path, seed: str, archives: tuple[Path, ...]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BUILD, str(project / "config.toml"), *map(str, archives)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _stories(folder: Path, seeds: tuple[str, ...], *archives: Path) -> dict[str, dict[str, bytes]]:
    """The report's files built from `archives` by one process per hash seed, side by side."""
    projects = {seed: shipped_project(folder / f"seed-{seed}") for seed in seeds}
    builds = {seed: _build(project, seed, archives) for seed, project in projects.items()}
    for seed, build in builds.items():
        _, err = build.communicate(timeout=300)
        assert build.returncode == 0, f"PYTHONHASHSEED={seed}: {err}"
    return {seed: {f: (p / "site" / f).read_bytes() for f in FILES} for seed, p in projects.items()}


def _all_alike(written: dict[str, dict[str, bytes]]) -> None:
    first, *others = written
    for seed in others:
        for name in FILES:
            assert written[seed][name] == written[first][name], f"{name}, PYTHONHASHSEED={seed}"


@pytest.mark.slow  # five real processes, each running the whole pipeline: CI runs it (-m slow)
def test_the_example_story_is_the_same_under_any_hash_seed(tmp_path: Path) -> None:
    # 0 turns hash randomisation off; "random" is Python's default.
    written = _stories(tmp_path, ("0", "1", "2", "3", "random"), EXAMPLE)
    story = json.loads(written["0"]["story.json"])
    assert sum(len(part["key_points"]) for part in story["parts"]) >= 5  # much to compare
    assert any(part["themes"] for part in story["parts"])
    _all_alike(written)


def test_tied_links_and_hashtags_are_listed_alike_under_any_hash_seed(tmp_path: Path) -> None:
    ties = write_jsonl(tmp_path / "ties.jsonl", TIES)
    written = _stories(tmp_path, ("1", "2", "3", "4"), ties)
    overview = json.loads(written["1"]["story.json"])["overview"]
    assert [t["label"] for t in overview["hashtags"]][:3] == ["#CoPro16", "#Alpha", "#Beta"]
    assert [t["label"] for t in overview["links"]][:2] == [
        "https://a.example/support",
        "https://b.example/peer",
    ]
    _all_alike(written)
