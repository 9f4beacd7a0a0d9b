"""Atomic file writes: a reader (a web server, a spreadsheet, the next step) sees the old file or
the new one, never half of one. The one helper every writer of reports, exports, manifests and
thumbnails uses.

Core layer: imports nothing of the project.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Literal, overload

__all__ = ["atomic_write", "write_bytes", "write_text"]


@overload
@contextmanager
def atomic_write(
    path: Path, mode: Literal["w"] = "w", *, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[IO[str]]: ...
@overload
@contextmanager
def atomic_write(
    path: Path, mode: Literal["wb"], *, encoding: None = None, newline: None = None
) -> Iterator[IO[bytes]]: ...


@contextmanager  # type: ignore[misc]
def atomic_write(
    path: Path, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path` and, when the block ends without an error, flush it to
    disk and rename it over `path` (os.replace: atomic on POSIX and Windows). On an error the
    temporary file is removed and `path` is untouched. The folder must exist."""
    path = Path(path)
    binary = "b" in mode
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with open(
            fd, mode, encoding=None if binary else encoding, newline=None if binary else newline
        ) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600: give it a normal file's mode
        tmp.replace(path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise


def write_text(path: Path, text: str, *, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically."""
    with atomic_write(path, "w", encoding=encoding, newline="") as fh:
        fh.write(text)


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def _umask() -> int:
    """The process's umask, read once at import (setting it back at once; no thread runs yet)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()
