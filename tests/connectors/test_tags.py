"""TAGS CSV importer: rounded ids recovered, bad rows rejected by sheet row, byte-exact resume."""

from __future__ import annotations

import csv
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError, Post, SourceSpec
from connectors.settings import FileSettings
from connectors.tags import COLUMNS, TagsConnector, read_tags, recover_id

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tags"
ARCHIVE = FIXTURES / "archive.csv"


def all_pages(path: Path) -> tuple[dict[str, Post], list[str], list[str]]:
    posts: dict[str, Post] = {}
    rejected: list[str] = []
    warnings: list[str] = []
    for page in read_tags(path):
        rejected += page.rejected
        warnings += page.warnings
        posts.update((p.id, p) for p in page.posts)
    return posts, rejected, warnings


def source(path: Path | None) -> SourceSpec[FileSettings]:
    return SourceSpec("sheet", FileSettings(), path=path)


def write_csv(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8") -> None:
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def row(tweet_id: str, text: str, **cells: str) -> dict[str, str]:
    base = dict.fromkeys(COLUMNS, "")
    base.update(id_str=tweet_id, from_user="nhs_voices", text=text,
                created_at="Mon Nov 28 12:05:11 +0000 2016",
                status_url=f"http://twitter.com/nhs_voices/statuses/{tweet_id}")  # fmt: skip
    base.update(cells)
    return base


def test_columns_match_the_real_sheet() -> None:
    names = (FIXTURES / "archive_sheet_columns.txt").read_text().split()
    assert list(COLUMNS) == names
    assert ARCHIVE.read_text().splitlines()[0].split(",") == names


def test_row_fields() -> None:
    posts, _, _ = all_pages(ARCHIVE)
    post = posts["803236158464139264"]
    assert post.platform == "x"
    assert post.author == "nhs_voices"
    assert post.created_at == datetime(2016, 11, 28, 12, 5, 11, tzinfo=UTC)
    assert post.text == "Nothing about us without us & for us #CoPro16 @carer_mel"
    assert post.hashtags == ["CoPro16"] and post.mentions == ["carer_mel"]
    assert post.url == "https://x.com/nhs_voices/status/803236158464139264"
    assert post.raw["status_url"].endswith("/803236158464139264")
    assert post.via == "archive.csv"


def test_rounded_ids_are_recovered_from_status_url() -> None:
    posts, _, _ = all_pages(ARCHIVE)
    assert "803252470110003200" in posts  # id_str was "8.03252E+17"
    assert "803311000000000777" in posts  # id_str was "803311000000000000"
    assert not any(i.endswith("E+17") or i == "803311000000000000" for i in posts)
    assert posts["803252470110003200"].links == ["https://www.leeds.gov.uk/"]


def test_rounded_reply_id_is_dropped_not_guessed() -> None:
    posts, _, _ = all_pages(ARCHIVE)
    assert posts["803311000000000777"].reply_to is None  # the cell said "8.03230E+17"
    assert posts["803320000000000020"].reply_to == "803312000000000010"


def test_multiline_text_and_text_fallback_for_bad_entities() -> None:
    posts, _, _ = all_pages(ARCHIVE)
    assert posts["803311000000000777"].text.startswith("Dawn Nicholls: parents lead change,\nthey")
    retweet = posts["803311700000000001"]  # entities_str is "{not json": read from the text
    assert retweet.hashtags == ["CoPro16"] and retweet.mentions == ["carer_mel"]


def test_bad_rows_rejected_with_sheet_row_numbers() -> None:
    posts, rejected, _ = all_pages(ARCHIVE)
    assert len(posts) == 5
    assert [r.split(":")[0] for r in rejected] == ["row 5", "row 7", "row 8"]
    assert "status_url is empty" in rejected[0]


def test_windows_1252_and_bom_files_are_read(tmp_path: Path) -> None:
    cp = tmp_path / "excel.csv"
    write_csv(cp, [row("803320000000000020", "Café culture at #CoPro16 – yes")], "cp1252")
    posts, rejected, warnings = all_pages(cp)
    assert posts["803320000000000020"].text == "Café culture at #CoPro16 – yes"
    assert not rejected and warnings == ["some lines are not UTF-8: read as Windows-1252"]
    bom = tmp_path / "bom.csv"
    write_csv(bom, [row("803320000000000021", "#CoPro16")], "utf-8-sig")
    assert set(all_pages(bom)[0]) == {"803320000000000021"}


def test_a_file_that_is_not_a_tags_sheet_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("name,score\nann,3\n")
    with pytest.raises(ConnectorError, match="not a TAGS archive: no id_str, from_user"):
        list(read_tags(path))


def run(connector: TagsConnector, cursor: dict[str, Any] | None, stop_after: int | None = None):
    seen: list[str] = []
    for n, page in enumerate(connector.fetch(cursor), 1):
        seen += [p.id for p in page.posts]
        cursor = page.cursor
        if n == stop_after:
            break
    return seen, cursor


@pytest.mark.parametrize("kill_after", [1, 2, 3, 4])
def test_case_06_killed_import_resumes_no_gap_no_duplicate(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "sheet.csv"
    shutil.copy(ARCHIVE, path)
    connector = TagsConnector(source(path))
    connector.page_size = 1
    expected, _ = run(connector, None)
    first, cursor = run(connector, None, stop_after=kill_after)
    rest, _ = run(connector, cursor)
    assert first + rest == expected
    assert len(expected) == len(set(expected)) == 5


def test_missing_path_is_a_clear_error() -> None:
    with pytest.raises(ConnectorError, match="path"):
        TagsConnector(source(None))


ids = st.integers(min_value=10**17, max_value=2**63 - 1).map(str)


@given(ids, st.integers(min_value=1, max_value=14))
def test_any_spreadsheet_rounding_is_recovered_from_status_url(tweet_id: str, digits: int) -> None:
    scientific = f"{float(tweet_id):.{digits}E}"  # how Excel/Sheets show a long number
    zeroed = tweet_id[:15] + "0" * (len(tweet_id) - 15)  # 15 significant digits kept
    url = f"https://twitter.com/someone/status/{tweet_id}"
    for shown in (scientific, zeroed, tweet_id):
        assert recover_id(shown, url) == tweet_id
    with pytest.raises(ValueError, match="rounded"):
        recover_id(scientific, "")  # refused, never a wrong id


cell_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@settings(max_examples=40, deadline=None)
@given(st.lists(cell_text, min_size=1, max_size=6), st.integers(min_value=1, max_value=6))
def test_case_06_byte_cursor_resumes_whatever_the_text(texts: list[str], kill_after: int) -> None:
    rows = [row(str(803000000000000000 + i), t) for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sheet.csv"
        write_csv(path, rows)
        connector = TagsConnector(source(path))
        connector.page_size = 1
        first, cursor = run(connector, None, stop_after=kill_after)
        rest, _ = run(connector, cursor)
        posts, _, _ = all_pages(path)
    assert first + rest == [r["id_str"] for r in rows]
    assert [posts[r["id_str"]].text for r in rows] == [as_written(t) for t in texts]


def as_written(sent: str) -> str:
    """What X meant by a text it sent: it escapes only & < > (the &amp; last, so once)."""
    return sent.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_a_real_tags_archive_reads_row_for_row() -> None:
    """tidytags' sample of a real #aect19 sheet (SOURCES.md): R wrote `NA` in empty cells."""
    path = FIXTURES / "tidytags_sample.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    posts, rejected, warnings = all_pages(path)
    assert (rejected, warnings) == ([], [])
    assert list(posts) == [r["id_str"] for r in rows]
    assert [p.text for p in posts.values()] == [r["text"] for r in rows]  # no & to undo
    photo = posts["1248064163211096064"]
    assert (photo.author, photo.hashtags) == ("Patrick81040643", ["aect19"])
    assert photo.mentions == ["dtpthanh", "YamChaivisit"]
    assert photo.media == [
        {"url": "https://pbs.twimg.com/media/EHrwskZU0AA2xdG.jpg", "type": "photo", "alt": None}
    ]
    assert all(p.reply_to is None for p in posts.values())  # NA is no id


def test_tags_text_is_unescaped_once_and_hashtags_kept_once(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    text = "Q&amp;A at #CoPro16: write &amp;lt;3 &amp;amp; more #copro16 #EveryoneIncluded"
    write_csv(path, [row("803000000000000001", text)])
    (post,) = all_pages(path)[0].values()
    assert post.text == "Q&A at #CoPro16: write &lt;3 &amp; more #copro16 #EveryoneIncluded"
    assert post.hashtags == ["CoPro16", "EveryoneIncluded"]  # from the text: no entities_str
