"""One writer at a time, and a clean stop.

`RunLock` is a real OS lock (filelock: flock on Unix), so the operating system frees it when its
holder dies, even by SIGKILL; the holder's pid is noted in a file beside it for the error message.
`StopFlag` is set by SIGINT/SIGTERM; long loops check it between pages and stop cleanly there, and
waits (retry backoff, rate limits) sleep through it, so a stop ends them at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType

from filelock import FileLock, Timeout

from aggregator.config import Config
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


class LockError(Exception):
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


class StopRequested(Exception):
    """A stop was requested during a wait: what was waiting gives up at once (not a failure)."""


class StopFlag:
    """A stop request: call it to ask whether to stop; set by `set()` or, inside `signals()`, by
    SIGINT/SIGTERM. A second signal acts as usual (Ctrl-C twice forces the stop).

    `wait` and `sleep` are waits a stop ends at once, from any thread. They block on a bare lock
    that `set()` releases, never blocking itself: a signal handler may run while this same
    thread is inside a wait (a threading.Event could deadlock there on its own lock)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._requested = False
        self._wake = threading.Lock()
        self._wake.acquire()  # held until a stop is requested; then free, so no wait blocks
        self._listeners: list[Callable[[], None]] = []

    def __call__(self) -> bool:
        return self._requested

    def set(self) -> None:
        self._requested = True
        self._free()
        for listener in self._listeners:
            listener()

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`, ending at once if a stop is (or was) requested; whether one was."""
        timeout = min(seconds, threading.TIMEOUT_MAX)
        if not self._requested and seconds > 0 and self._wake.acquire(timeout=timeout):
            self._free()  # the stop stands: every later wait ends at once too
        return self._requested

    def sleep(self, seconds: float) -> None:
        """`time.sleep` that a stop ends. :raises StopRequested: when a stop is requested."""
        if self.wait(seconds):
            raise StopRequested(f"stopped on request during a {seconds:.0f}s wait")

    def _free(self) -> None:
        with contextlib.suppress(RuntimeError):  # already free: a stop was requested before
            self._wake.release()

    def on_stop(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the signal handler) when a stop is requested."""
        self._listeners.append(listener)

    @contextlib.contextmanager
    def signals(self) -> Iterator[StopFlag]:
        """Within the block, SIGINT/SIGTERM set the flag instead of killing the process."""
        if threading.current_thread() is not threading.main_thread():
            yield self  # only the main thread may set signal handlers
            return
        previous = {s: signal.getsignal(s) for s in self.SIGNALS}

        def handler(signum: int, _frame: FrameType | None) -> None:
            for s, old in previous.items():  # the next signal does what it did before
                signal.signal(s, old)
            self.set()

        for s in self.SIGNALS:
            signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, old in previous.items():
                signal.signal(s, old)
