"""aggregator/files.py: the one atomic write. A reader sees the old file or the new one; an error
leaves the old one and no temporary file; errors name the file asked for."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aggregator.files import atomic_write, write_bytes, write_text


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_text_writes_exactly_what_it_is_given(tmp_path):
    path = tmp_path / "report.md"
    text = "Café ☕ line one\r\nline two\nno newline at the end"
    write_text(path, text)
    assert path.read_bytes() == text.encode("utf-8")  # no newline translated, UTF-8
    assert leftovers(tmp_path) == []


def test_write_bytes_replaces_the_old_file_whole(tmp_path):
    path = tmp_path / "thumb.jpg"
    path.write_bytes(b"old contents, longer than the new ones")
    write_bytes(path, b"\xff\xd8new")
    assert path.read_bytes() == b"\xff\xd8new"
    assert leftovers(tmp_path) == []


def test_while_the_block_writes_the_old_file_is_still_whole(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("old\n", encoding="utf-8")
    with atomic_write(path, newline="") as fh:
        fh.write("new,")
        fh.flush()
        assert path.read_text(encoding="utf-8") == "old\n"  # a reader now sees the old file
        assert len(leftovers(tmp_path)) == 1  # the new one is beside it, hidden
        fh.write("row\r\n")
    assert path.read_bytes() == b"new,row\r\n"


def test_an_error_in_the_block_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    path = tmp_path / "story.json"
    path.write_text("{}\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="stream broke"), atomic_write(path) as fh:
        fh.write('{"half": ')
        raise RuntimeError("stream broke")
    assert path.read_text(encoding="utf-8") == "{}\n"
    assert leftovers(tmp_path) == []


def test_a_missing_folder_is_an_error_naming_the_file_asked_for(tmp_path):
    path = tmp_path / "no-such-folder" / "index.html"
    with pytest.raises(FileNotFoundError) as err:
        write_text(path, "x")
    assert err.value.filename == str(path)  # not the temporary name


def test_a_folder_in_the_way_is_an_error_naming_it_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "site"
    path.mkdir()
    with pytest.raises(OSError) as err:
        write_text(path, "x")
    assert err.value.filename == str(path) and err.value.strerror
    assert path.is_dir() and leftovers(tmp_path) == []


def test_the_new_file_has_a_new_files_permissions_under_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640


def test_only_writing_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="'w' or 'wb'"), atomic_write(tmp_path / "a", "a"):  # type: ignore[call-overload]
        pass
    assert list(tmp_path.iterdir()) == []
