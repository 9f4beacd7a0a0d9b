"""End to end through the real command, on a copy of the shipped config and bundled example."""

from __future__ import annotations

import csv
import io
import json
import re

import click
from click.testing import CliRunner

from aggregator.cli import cli
from connectors.tags import COLUMNS
from tests.helpers import EXAMPLE, ROOT, invoke

EXPECTED = {}
with EXAMPLE.open(encoding="utf-8") as _fh:
    for _line in _fh:
        _row = json.loads(_line)
        EXPECTED[_row["id"]] = _row["expected_session"]


def test_run_on_the_bundled_example(project):
    result = invoke(project, "run")
    assert result.exit_code == 0, result.output
    assert f"Report: {project / 'site' / 'index.html'}" in result.output
    html = (project / "site" / "index.html").read_text()
    for sid in ["panel-opening", *[f"session-{i}" for i in range(1, 8)], "panel-closing"]:
        assert f'id="{sid}"' in html
    assert (project / "site" / "report.md").is_file()


def test_case_19_run_twice_adds_nothing(project):
    assert invoke(project, "run").exit_code == 0
    second = invoke(project, "run")
    assert second.exit_code == 0
    assert "example: 0 new" in second.output


def test_export_gives_every_post_with_its_session(example_loaded):
    result = invoke(example_loaded, "export", "--format", "csv", "--output", "-")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["post_id"] for r in rows} == set(EXPECTED)
    agree = sum((r["session_id"] or None) == EXPECTED[r["post_id"]] for r in rows)
    assert agree / len(rows) >= 0.99


def test_export_to_a_file(example_loaded):
    out = example_loaded / "posts.csv"
    result = invoke(example_loaded, "export", "--output", str(out))
    assert result.exit_code == 0
    with out.open(newline="", encoding="utf-8") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == len(EXPECTED)


def test_import_reports_bad_lines_and_keeps_good_ones(project):
    path = project / "mixed.jsonl"
    good = EXAMPLE.read_text(encoding="utf-8").splitlines()[:3]
    path.write_text("\n".join([good[0], "{oops", good[1], good[2]]) + "\n")
    result = invoke(project, "import", str(path), "--format", "jsonl")
    assert result.exit_code == 0
    assert "line 2" in result.output
    assert "3 new" in result.output
    again = invoke(project, "import", str(path))
    assert "0 new" in again.output


def test_import_shows_each_warning_of_the_archive(project):
    sheet = project / "excel.csv"
    with sheet.open("w", newline="", encoding="cp1252") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerow(
            {**dict.fromkeys(COLUMNS, ""), "id_str": "803320000000000020",
             "from_user": "nhs_voices", "text": "Café culture at #CoPro16 – yes",
             "created_at": "Mon Nov 28 12:05:11 +0000 2016",
             "status_url": "http://twitter.com/nhs_voices/statuses/803320000000000020"}
        )  # fmt: skip
    result = invoke(project, "import", str(sheet), "--format", "tags")
    assert result.exit_code == 0, result.output
    assert "! excel.csv: some lines are not UTF-8: read as Windows-1252" in result.stderr
    assert "Imported excel.csv: 1 new, 0 updated, 0 skipped." in result.stdout
    plain = project / "plain.csv"
    plain.write_text(sheet.read_text(encoding="cp1252"), encoding="utf-8")
    clean = invoke(project, "import", str(plain), "--format", "tags")
    assert clean.exit_code == 0 and "Windows-1252" not in clean.stderr


def test_collect_one_source_and_status(project):
    result = invoke(project, "collect", "--source", "example")
    assert result.exit_code == 0
    status = invoke(project, "status")
    assert status.exit_code == 0
    assert re.search(r"example: ok, 400 new", status.output)


def test_unknown_source_is_a_usage_error(project):
    result = invoke(project, "collect", "--source", "nope")
    assert result.exit_code == 2
    assert "no source named 'nope'" in result.output


def test_case_35_bad_config_exits_2_naming_every_field_and_runs_nothing(project):
    cfg = project / "config.toml"
    text = cfg.read_text().replace('timezone = "Europe/London"', 'timezone = "Nowhere/Land"')
    text = text.replace('type = "x"', 'type = "friendster"')
    cfg.write_text(text)
    result = invoke(project, "run")
    assert result.exit_code == 2
    assert "event.timezone" in result.output and "sources[3].type" in result.output
    assert not (project / "data").exists()


def test_missing_config_names_the_fix(tmp_path):
    result = invoke(tmp_path / "none.toml", "run")
    assert result.exit_code == 2
    assert "AGGREGATOR_CONFIG" in result.output


def test_config_from_the_environment(project):
    result = CliRunner().invoke(
        cli, ["status"], env={"AGGREGATOR_CONFIG": str(project / "config.toml")}
    )
    assert result.exit_code == 0
    assert "No runs yet" in result.output


def test_case_35_a_missing_archive_is_a_config_error_before_anything_runs(project):
    cfg = project / "config.toml"
    cfg.write_text(
        cfg.read_text() + '\n[[sources]]\nname = "gone"\ntype = "jsonl"\npath = "gone.jsonl"\n'
    )
    result = invoke(project, "collect")
    assert result.exit_code == 2
    assert "sources[4].path" in result.output and "gone.jsonl" in result.output
    assert not (project / "data").exists()


def test_readme_shows_the_real_help_of_every_command():
    from docs.readme_help import render_help

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert render_help() in readme, "README is stale: run python docs/readme_help.py"
    commands = cli.list_commands(click.Context(cli))
    assert {"import", "collect", "tag", "report", "export", "run", "status"} <= set(commands)
    for command in commands:
        assert f"### `aggregator {command}`" in readme, f"README does not document {command}"


def test_an_import_where_every_line_is_skipped_fails_and_names_the_format(project):
    path = project / "notes.txt"
    path.write_text("\n".join(f"not a post {i}" for i in range(30)) + "\n")
    result = invoke(project, "import", str(path))
    assert result.exit_code == 1
    assert "no post could be read from notes.txt" in result.output
    assert "--format jsonl" in result.output
    assert result.output.count("skipped line") == 20  # then a count, not thirty lines
    assert "and 10 more lines skipped" in result.output
