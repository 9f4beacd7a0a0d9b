"""One writer at a time.

`RunLock` is a real OS lock (filelock: flock on Unix), so the operating system frees it when its
holder dies, even by SIGKILL; the holder's pid is noted in a file beside it for the error message.
The clean stop that goes with it (`StopFlag`, `StopRequested`) is aggregator.stop's, named here too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from aggregator.errors import AggregatorError
from aggregator.settings import Config
from aggregator.stop import StopFlag, StopRequested
from storage.db import beside_database

__all__ = [
    "LockError",
    "LockHeld",
    "RunLock",
    "StopFlag",
    "StopRequested",
    "holder_pid",
    "lock_path",
    "pid_alive",
]

LOCK_NAME = ".aggregator.lock"


class LockError(AggregatorError):
    """The lock cannot be used (its folder is not writable); the message says where."""


class LockHeld(LockError):
    """Another process holds the lock."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        super().__init__(f"a collection is already running (pid {pid if pid else 'unknown'})")


def lock_path(config: Config) -> Path:
    """Beside the SQLite file (`aggregator.db.lock`); for any other database, in the config's folder."""
    return beside_database(config.database_url, ".lock") or config.base_dir / LOCK_NAME


def _pid_file(path: Path) -> Path:
    return path.with_name(path.name + ".pid")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def holder_pid(path: Path) -> int | None:
    """The pid noted by the lock's holder, if the note is there and that process is alive."""
    try:
        pid = int(_pid_file(path).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


class RunLock:
    """The writers' lock: `with RunLock(lock_path(config)):` or raise LockHeld at once (no waiting)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path), timeout=0)

    def acquire(self) -> None:
        """:raises LockHeld: another process holds it. :raises LockError: it cannot be created."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire(timeout=0)
        except Timeout:
            raise LockHeld(holder_pid(self.path)) from None
        except OSError as exc:
            raise LockError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        with contextlib.suppress(OSError):  # the note is for messages only; the lock is what counts
            _pid_file(self.path).write_text(f"{os.getpid()}\n", encoding="ascii")

    def release(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            note = _pid_file(self.path)
            if int(note.read_text(encoding="ascii").strip()) == os.getpid():
                note.unlink()
        self._lock.release()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.release()
