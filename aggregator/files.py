"""Atomic file writes: a reader (a web server, a spreadsheet, the next step) sees the old file or
the new one, never half of one. The one helper every writer of reports, exports, manifests and
thumbnails uses.

Core layer: imports nothing of the project.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

__all__ = ["atomic_write", "write_bytes", "write_text"]

NEW_FILE_MODE = 0o666  # less the umask, as for any new file: the kernel applies it
NAME_TRIES = 100  # temporary names tried when one is taken (two random clashes are unheard of)


@overload
@contextmanager
def atomic_write(
    path: Path, mode: Literal["w"] = "w", *, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[TextIO]: ...
@overload
@contextmanager
def atomic_write(
    path: Path, mode: Literal["wb"], *, encoding: None = None, newline: None = None
) -> Iterator[BinaryIO]: ...


@contextmanager
def atomic_write(
    path: Path, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO[Any]]:
    """Open a new temporary file beside `path` and, when the block ends without an error, flush
    it to disk and rename it over `path` (os.replace: atomic on POSIX and Windows). On an error
    the temporary file is removed and `path` is untouched. The folder must exist.

    The new file gets a new file's permissions (0666 less the umask). The contents reach the disk
    before the rename, so a crash leaves the old file or the whole new one, never a truncated one.

    :raises OSError: naming `path` (not the temporary file) when it cannot be created or replaced.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write opens a file to write, 'w' or 'wb', not {mode!r}")
    path = Path(path)
    binary = mode == "wb"
    fd, tmp = _create_beside(path)
    try:
        with open(fd, mode, encoding=None if binary else encoding,
                  newline=None if binary else newline) as fh:  # fmt: skip
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            tmp.replace(path)
        except OSError as exc:
            raise _naming(exc, path) from None
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise


def write_text(path: Path, text: str, *, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically, exactly as given (no newline translation)."""
    with atomic_write(path, "w", encoding=encoding, newline="") as fh:
        fh.write(text)


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def _create_beside(path: Path) -> tuple[int, Path]:
    """A new file `.<name>.<random>.tmp` in `path`'s folder, open for writing: its descriptor and path.

    O_EXCL: never an existing file (nor a link planted under its name). The mode is given to the
    kernel, which applies the umask: the umask is never read or changed, as no other thread may
    see it changed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(NAME_TRIES):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, NEW_FILE_MODE), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise _naming(exc, path) from None
    raise FileExistsError(errno.EEXIST, "no free temporary name beside it", os.fspath(path))


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error (same class, errno and reason) about `path` instead of the temporary file."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, os.fspath(path))
