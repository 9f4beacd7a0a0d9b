"""One writer at a time.

On SQLite, `RunLock` is a real OS lock (filelock: flock on Unix), so the operating system frees it
when its holder dies, even by SIGKILL; the holder's pid is noted in a file beside it for the error
message. On PostgreSQL, where writers may run on several machines, `PgLock` is an advisory lock
held by a connection of its own, which the server frees when that connection ends (its process
killed, its machine gone); the holder's host and pid ride on the connection's application_name.
`writers_lock(config)` picks the one for the config's database; `lock_holder(config)` names who
holds it. The clean stop that goes with it (`StopFlag`, `StopRequested`) is aggregator.stop's,
named here too.
"""

from __future__ import annotations

import contextlib
import os
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from filelock import FileLock, Timeout
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from aggregator.errors import AggregatorError
from aggregator.settings import Config
from aggregator.stop import StopFlag, StopRequested
from storage.db import beside_database

__all__ = [
    "Holder",
    "LockError",
    "LockHeld",
    "PgLock",
    "RunLock",
    "StopFlag",
    "StopRequested",
    "holder_pid",
    "lock_holder",
    "lock_path",
    "pid_alive",
    "writers_lock",
]

LOCK_NAME = ".aggregator.lock"


class LockError(AggregatorError):
    """The lock cannot be used (its folder is not writable); the message says where."""


class LockHeld(LockError):
    """Another process holds the lock (on `host`, when it may be another machine's)."""

    def __init__(self, pid: int | None, host: str | None = None) -> None:
        self.pid, self.host = pid, host
        where = f" on {host}" if host else ""
        super().__init__(
            f"a collection is already running (pid {pid if pid else 'unknown'}{where})"
        )


class _Held:
    """A lock held for a `with` block: acquired on entering, released on leaving."""

    def acquire(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.release()


@dataclass(frozen=True)
class Holder:
    """Who holds the writers' lock: a pid, and its machine when the lock is the database's."""

    pid: int | None
    host: str | None = None


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


class RunLock(_Held):
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


# pg_try_advisory_lock(NAMESPACE, key): the first half says the lock is this project's; the
# server keeps advisory locks per database, so one database has one writers' lock.
NAMESPACE = 0x61677267  # "agrg"
APP_PREFIX = "aggregator:"  # application_name = "aggregator:PID@HOST"


def lock_key(name: str) -> int:
    """A lock's name as the second half of its advisory lock's key (0 to 2**31 - 1)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _application_name() -> str:
    """This process as PostgreSQL shows it (pg_stat_activity): pid and host, within 63 bytes."""
    return f"{APP_PREFIX}{os.getpid()}@{socket.gethostname()}"[:63]


def _holder_from(application_name: str | None, backend_pid: int) -> Holder:
    name = application_name or ""
    if name.startswith(APP_PREFIX) and "@" in name:
        pid, host = name.removeprefix(APP_PREFIX).split("@", 1)
        if pid.isdigit():
            return Holder(int(pid), host)
    return Holder(None, f"database session {backend_pid} ({name or 'no application name'})")


HOLDER_SQL = text(
    "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :ns AND l.objid = :key "
    "AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database "
    "WHERE datname = current_database()) LIMIT 1"
)


class PgLock(_Held):
    """A PostgreSQL advisory lock named `name` in the database at `url` (a SQLAlchemy URL):
    `with PgLock(url):` or raise LockHeld, naming the holder, at once (no waiting). Held by a
    connection of its own, outside any transaction, until released or that connection ends."""

    def __init__(self, url: str, name: str = "writers") -> None:
        self.url, self.name = url, name
        self._params = {"ns": NAMESPACE, "key": lock_key(name)}
        self._conn: Connection | None = None

    def _connect(self) -> Connection:
        try:
            engine = create_engine(
                self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                connect_args={"application_name": _application_name()},
            )  # fmt: skip
        except ModuleNotFoundError as exc:
            raise LockError(
                f"database driver {exc.name!r} is not installed (for PostgreSQL: pip install '.[postgres]')"
            ) from None
        try:
            return engine.connect()
        except SQLAlchemyError as exc:
            where = make_url(self.url).render_as_string(hide_password=True)
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            raise LockError(f"cannot take the writers' lock in {where}: {reason}") from None

    def acquire(self) -> None:
        """:raises LockHeld: another session holds it. :raises LockError: no connection."""
        conn = self._connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), self._params)
            if not got.scalar():
                found = self._holder_on(conn) or Holder(None)  # None: let go since we asked
                raise LockHeld(found.pid, found.host)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def holder(self) -> Holder | None:
        """Who holds it now (None: nobody), asked on a connection opened for the question."""
        with self._connect() as conn:
            return self._holder_on(conn)

    def _holder_on(self, conn: Connection) -> Holder | None:
        row = conn.execute(HOLDER_SQL, self._params).first()
        return None if row is None else _holder_from(row.application_name, row.pid)

    def release(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        with contextlib.suppress(SQLAlchemyError):  # closing the session frees it anyway
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), self._params)
        conn.close()
        conn.engine.dispose()


def _on_postgresql(config: Config) -> bool:
    return make_url(config.database_url).get_backend_name() == "postgresql"


def writers_lock(config: Config) -> RunLock | PgLock:
    """The writers' lock of the config's database: an advisory lock on PostgreSQL (writers may be
    on several machines), else the file lock beside it."""
    return PgLock(config.database_url) if _on_postgresql(config) else RunLock(lock_path(config))


def lock_holder(config: Config) -> Holder | None:
    """Who holds the writers' lock of the config's database now (None: nobody).

    :raises LockError: PostgreSQL cannot be reached."""
    if _on_postgresql(config):
        return PgLock(config.database_url).holder()
    pid = holder_pid(lock_path(config))
    return None if pid is None else Holder(pid)
