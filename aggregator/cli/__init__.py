"""The `aggregator` command: the group, its global options and the helpers every command shares.

The `aggregator.cli` package is the only code that prints or exits. Its commands live in
submodules by responsibility (collecting, tagging, reporting, admin) and register on `cli`.
Exit codes: 0 done, 1 failed (a source or step failed; a summary says which), 2 usage or config error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy.engine import Engine

from aggregator import __version__
from aggregator.config import Config, ConfigError, load_config, resolve_config_path
from aggregator.curation import load_curation
from aggregator.lock import LockError, LockHeld, RunLock, lock_path
from aggregator.logs import (
    IN_SUMMARY,
    redact,
    secret_env_names,
    setup_logging,
    teardown_logging,
    watch_secrets,
)
from connectors import ConnectorError
from storage.db import StorageError, open_database

__all__ = [
    "ConfigProblem",
    "Failed",
    "cli",
    "fail",
    "failures",
    "get_config",
    "get_engine",
    "main",
    "printable",
    "progress",
    "writing",
]

log = logging.getLogger("aggregator")


class Failed(click.ClickException):
    """Exit 1 with one line on stderr."""

    exit_code = 1


class ConfigProblem(click.ClickException):
    exit_code = 2


def fail(message: str) -> NoReturn:
    """Exit 1 with `message` as the one line on stderr; --log-file records it too, with its time."""
    message = redact(message)
    log.error("%s", message, extra=IN_SUMMARY)  # click prints it on stderr
    raise Failed(message)


class _Group(click.Group):
    """The command group. A reader that closes the pipe early (`export | head`) is a normal end
    for every command, and for --help and --version: exit 0, no message. (Click itself ends
    with exit 1 then, so it is caught here, before click's own handler.)"""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)  # --help and --version print here
        except BrokenPipeError:
            _reader_gone()

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _reader_gone()


def _reader_gone() -> NoReturn:
    """Exit 0 quietly. As the Python docs' "Note on SIGPIPE" says, standard output is pointed at
    devnull first, so the flush at exit does not fail on the closed pipe again."""
    with suppress(OSError, ValueError):  # not a file descriptor (e.g. click's test runner)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise click.exceptions.Exit(0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="The event's config file. [default: $AGGREGATOR_CONFIG, else ./config.toml]",
)
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Also append log lines, with times, to this file (info and up).")  # fmt: skip
@click.option("--verbose", "-v", is_flag=True, help="Log everything, debug lines included.")
@click.option("--quiet", "-q", is_flag=True, help="Only errors on stderr; no progress bars.")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, log_file: Path | None, verbose: bool, quiet: bool
) -> None:
    """Collect an event's hashtag posts, tag them to the programme's sessions, and tell the story."""
    if verbose and quiet:
        raise click.UsageError("use --verbose or --quiet, not both")
    try:
        setup_logging(verbose, quiet, log_file)
    except OSError as exc:
        message = f"cannot open {log_file}: {exc.strerror}"
        raise click.BadParameter(message, param_hint="--log-file") from None
    ctx.call_on_close(teardown_logging)
    ctx.meta["aggregator.quiet"] = quiet
    ctx.obj = resolve_config_path(config_path)


def get_config(ctx: click.Context) -> Config:
    try:
        config = load_config(ctx.find_root().obj)
        load_curation(config)  # a bad curation file is a config error too: nothing runs
        watch_secrets(secret_env_names(config.raw))  # never log what the *_env variables hold
        return config
    except ConfigError as exc:
        if len(exc.problems) == 1:
            raise ConfigProblem(f"{exc.path}: {exc.problems[0]}") from None
        lines = "\n".join(f"  {p}" for p in exc.problems)
        raise ConfigProblem(f"{exc.path} has {len(exc.problems)} problems:\n{lines}") from None


def get_engine(config: Config) -> Engine:
    try:
        engine = open_database(config.database_url)
    except StorageError as exc:
        fail(str(exc))
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # close pooled connections when the command ends, as writing() does
        ctx.call_on_close(engine.dispose)
    with failures():
        _check_event(engine, config)
    return engine


def _check_event(engine: Engine, config: Config, record: bool = False) -> None:
    """Warn when the database holds another event's posts (a config copied beside another one
    shares its database); a writing command first records its event if none is recorded yet."""
    from aggregator.stamp import mismatch, record_event, recorded_event

    recorded = record_event(engine, config.event.name) if record else recorded_event(engine)
    if warning := mismatch(engine, recorded, config.event.name):
        log.warning("%s", printable(warning, 1000))


@contextmanager
def failures() -> Iterator[None]:
    """Turn the project's own errors into one line and exit 1."""
    try:
        yield
    except LockHeld as exc:
        fail(f"{exc}: wait for it to finish (`aggregator status` shows it)")
    except (LockError, StorageError, ConnectorError) as exc:
        fail(str(exc))
    except OSError as exc:  # e.g. the report folder is not writable, or the disk is full
        # not the system's error (jinja2's TemplateNotFound is an OSError), or a reader that
        # stopped reading (a normal end: see _Group)
        if exc.errno is None or isinstance(exc, BrokenPipeError):
            raise
        fail(f"cannot write {exc.filename or 'a file'}: {exc.strerror}")


@contextmanager
def writing(config: Config) -> Iterator[Engine]:
    """The database under the one writers' lock; runs a killed process left 'running' are marked.

    :raises LockHeld: another run holds the lock (use inside `failures()` for the one-line exit).
    """
    from aggregator.health import recover_interrupted

    with RunLock(lock_path(config)):
        engine = open_database(config.database_url)
        try:
            recover_interrupted(engine)
            _check_event(engine, config, record=True)
            yield engine
        finally:
            engine.dispose()  # `schedule` opens one a night: close its connections (it stays usable)


def _is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress(ctx: click.Context) -> Iterator[Any]:
    """Progress bars on a terminal, one per source (pages, posts); nothing under cron, in a pipe
    or with --quiet. Yields the per-page callback, or None."""
    if ctx.meta.get("aggregator.quiet") or not _is_terminal():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    tasks: dict[str, Any] = {}
    pages: dict[str, int] = {}
    columns = (SpinnerColumn(), TextColumn("{task.description}"),
               TextColumn("{task.fields[pages]} pages, {task.completed:.0f} posts"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=Console(stderr=True, force_terminal=True)) as bars:

        def on_page(name: str, page: Any) -> None:
            pages[name] = pages.get(name, 0) + 1
            if name not in tasks:
                tasks[name] = bars.add_task(printable(name, 40), total=None, pages=0)
            bars.update(tasks[name], advance=len(page.posts), pages=pages[name])

        yield on_page


def printable(text: str, limit: int = 280) -> str:
    """Post text is hostile: no terminal control sequences, one line."""
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main() -> None:
    cli()


# The commands register themselves on `cli`; imported last because they use the helpers above.
from aggregator.cli import admin, collecting, reporting, tagging  # noqa: E402, F401
