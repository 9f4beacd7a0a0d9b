"""The export's columns: the CSV header is the documented dictionary, in order."""

from __future__ import annotations

import csv
import io
import re

from reports.columns import COLUMNS
from tests.helpers import EXAMPLE, ROOT, invoke, read_csv


def test_csv_columns_are_the_documented_ones_in_order(example_loaded):
    result = invoke(example_loaded, "export")
    assert result.exit_code == 0
    header = next(csv.reader(io.StringIO(result.stdout)))
    assert header == list(COLUMNS)
    dictionary = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `(\w+)` \|", dictionary, flags=re.MULTILINE)
    assert documented[: len(COLUMNS)] == list(COLUMNS)
    assert len(read_csv(result.stdout)) == len(EXAMPLE.read_text(encoding="utf-8").splitlines())
