"""The one writers' lock (reliability case 24) and the stop flag (case 38's signal half)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.config import Config, load_config
from aggregator.lock import LockError, LockHeld, RunLock, StopFlag, holder_pid, lock_path
from tests.helpers import ROOT, invoke, shipped_project

HOLD = """
import sys
from pathlib import Path
from aggregator.lock import RunLock
with RunLock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes this pipe
"""
WAIT = 60  # seconds: a guard against a hung test, never an assertion


@contextlib.contextmanager
def holding(config: Config) -> Iterator[subprocess.Popen]:
    """Another process holding the project's lock until the block ends (or a test kills it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock_path(config))],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.communicate(timeout=WAIT)  # closes its stdin: it lets go of the lock and ends
    assert proc.returncode in (0, -signal.SIGKILL)


@pytest.fixture
def holder(config: Config) -> Iterator[subprocess.Popen]:
    with holding(config) as proc:
        yield proc


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, subprocess.Popen]]:
    """A project whose lock another process holds, shared by the tests it refuses to write for
    (a refused command changes nothing)."""
    project = shipped_project(tmp_path_factory.mktemp("held"))
    with holding(load_config(project / "config.toml")) as proc:
        yield project, proc


def test_the_lock_sits_beside_the_sqlite_file(config):
    db = Path(config.database_url.removeprefix("sqlite:///"))
    assert lock_path(config) == db.with_name(db.name + ".lock")


def test_a_database_url_puts_the_lock_in_the_config_folder(project):
    cfg = project / "config.toml"
    text = cfg.read_text().replace(
        'database = "data/aggregator.db"', 'database = "postgresql+psycopg://u@db.example/agg"'
    )
    cfg.write_text(text)
    assert lock_path(load_config(cfg)) == project / ".aggregator.lock"


@pytest.mark.parametrize("command", [["collect"], ["run"], ["tag"], ["report"], ["import", "X"]])
def test_case_24_every_writer_refuses_while_another_process_writes(held, command):
    project, holder = held
    command = [
        str(project / "examples" / "transformathon-2016.jsonl") if a == "X" else a for a in command
    ]
    result = invoke(project, *command)
    assert result.exit_code == 1, result.output
    assert f"a collection is already running (pid {holder.pid})" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_case_17_reading_commands_run_while_another_process_writes(held):
    project, holder = held
    assert invoke(project, "export", "-o", "-").exit_code == 0
    status = invoke(project, "status")
    assert status.exit_code == 0
    assert f"A collection is running now (pid {holder.pid})" in status.output


@pytest.mark.slow  # kills a real process
def test_case_24_a_holder_killed_with_sigkill_frees_the_lock(project, config, holder):
    assert invoke(project, "collect").exit_code == 1
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert holder_pid(lock_path(config)) is None  # its note names a process that is gone
    result = invoke(project, "collect")
    assert result.exit_code == 0, result.output
    assert "example: 400 new" in result.output


def test_one_process_cannot_take_it_twice_and_release_frees_it(tmp_path):
    first, second = RunLock(tmp_path / "x.lock"), RunLock(tmp_path / "x.lock")
    with first:
        assert holder_pid(tmp_path / "x.lock") == os.getpid()
        with pytest.raises(LockHeld) as held:
            second.acquire()
        assert held.value.pid == os.getpid()
    with second:
        pass
    assert holder_pid(tmp_path / "x.lock") is None


def test_a_lock_that_cannot_be_created_says_where(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LockError, match="cannot create the lock file"):
        RunLock(blocker / "x.lock").acquire()


def test_case_38_the_stop_flag_turns_sigterm_into_a_request_and_restores_the_handler():
    stop = StopFlag()
    heard: list[bool] = []
    stop.on_stop(lambda: heard.append(True))
    before = signal.getsignal(signal.SIGTERM)
    with stop.signals():
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop() and heard == [True]
    assert signal.getsignal(signal.SIGTERM) == before
