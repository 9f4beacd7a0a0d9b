"""docs/reliability.md and the tests agree: each case listed there has a test named
`test_case_NN_<what>`, each such test names a listed case, and each case's row names exactly the
test files that hold its tests. Test names are read from the source with ast, never by importing."""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*)\|\s*$", re.M)  # | 7 | fault | what must happen | files |
TEST_FILE = re.compile(r"`(tests/(?:\w+/)*test_\w+\.py)`")
CASE_TEST = re.compile(r"test_case_(\d\d)_\w+")


def documented() -> dict[int, set[str]]:
    """Case number -> the test files its row in docs/reliability.md names."""
    rows: dict[int, set[str]] = {}
    for match in ROW.finditer(DOC.read_text(encoding="utf-8")):
        number = int(match.group(1))
        assert number not in rows, f"docs/reliability.md lists case {number} twice"
        rows[number] = set(TEST_FILE.findall(match.group(2)))
    return rows


@functools.cache
def case_tests() -> tuple[tuple[str, str], ...]:
    """(file, function name) of every test function under tests/ whose name starts test_case_."""
    found = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_case_"
            ):
                found.append((path.relative_to(ROOT).as_posix(), node.name))
    return tuple(found)


def files_by_case() -> dict[int, set[str]]:
    """Case number -> the files holding a test named for it."""
    files: dict[int, set[str]] = defaultdict(set)
    for path, name in case_tests():
        if match := CASE_TEST.fullmatch(name):
            files[int(match.group(1))].add(path)
    return files


def test_the_doc_numbers_its_cases_from_1_without_a_gap():
    numbers = sorted(documented())
    assert len(numbers) >= 43, "docs/reliability.md: its case tables were not found"
    assert numbers == list(range(1, len(numbers) + 1))


def test_every_documented_case_has_a_test_named_for_it():
    files = files_by_case()
    untested = [n for n in sorted(documented()) if not files[n]]
    assert untested == [], (
        f"cases {untested} have no test named test_case_NN_<what> under tests/ "
        "(NN two digits: test_case_07_...)"
    )


def test_every_case_test_names_a_documented_case_in_two_digits():
    cases = documented()
    misnamed = [
        f"{path}::{name}"
        for path, name in case_tests()
        if not (match := CASE_TEST.fullmatch(name)) or int(match.group(1)) not in cases
    ]
    assert misnamed == [], (
        f"{misnamed}: name a case docs/reliability.md lists, as test_case_NN_<what> (NN two digits)"
    )


def test_each_row_names_exactly_the_files_that_prove_its_case():
    files = files_by_case()
    wrong = {
        n: {"row names": sorted(named - files[n]), "row misses": sorted(files[n] - named)}
        for n, named in documented().items()
        if named != files[n]
    }
    assert wrong == {}, (
        "docs/reliability.md: make each case's 'proved in' cell list the test files holding its "
        f"test_case_NN_ tests; 'row names' files hold none, 'row misses' files hold some: {wrong}"
    )
