"""`aggregator report --evaluate FILE` and `--evaluate-safeguarding FILE`: precision and recall per
class against a labelled file, exit 1 when a target is missed, 2 for a file that cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import ROOT, invoke

EDITORIAL = ROOT / "tests" / "fixtures" / "editorial" / "labelled.jsonl"
SAFEGUARDING = ROOT / "tests" / "fixtures" / "safeguarding" / "labelled.jsonl"


def report(project: Path, *args: str):
    return invoke(project, "report", *args)


def test_the_editorial_rules_meet_their_targets_on_the_teams_labelled_set(project):
    result = report(project, "--evaluate", str(EDITORIAL))
    assert result.exit_code == 0, result.output
    for name in ("question", "pledge", "technical", "spam", "copy", "low_content"):
        assert any(line.split()[:1] == [name] for line in result.output.splitlines()), name
    assert not (project / "site").exists()  # evaluating writes no report


def test_safeguarding_meets_its_targets_on_the_teams_labelled_set(project):
    result = report(project, "--evaluate-safeguarding", str(SAFEGUARDING))
    assert result.exit_code == 0, result.output
    assert "nhs_number" in result.output and "disclosures" in result.output


def test_a_missed_target_fails_with_one_line_naming_it(project, tmp_path):
    wrong = tmp_path / "wrong.jsonl"
    rows = [
        {
            "id": f"W{i}",
            "author": f"a{i}",
            "text": f"Lovely talk number {i} #CoPro16",
            "created_at": "2016-11-28T13:00:00Z",
            "labels": ["question"],
        }
        for i in range(5)
    ]
    wrong.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = report(project, "--evaluate", str(wrong))
    assert result.exit_code == 1
    assert "question" in result.output.splitlines()[-1] and "missed" in result.output


def test_a_labelled_file_that_cannot_be_read_is_a_usage_error(project, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    for flag in ("--evaluate", "--evaluate-safeguarding"):
        result = report(project, flag, str(bad))
        assert result.exit_code == 2, (flag, result.output)
        assert "bad.jsonl" in result.output
