"""The `aggregator` command group, its global options, and the helpers every command shares.

Errors are turned into exits here, in one place (`_Group.invoke`): an `AggregatorError` from
anywhere ends the command with its one line on stderr and its `exit_code` (1 failed, 2 usage or
config); a failure's line is also logged (--log-file keeps it, with its time) with secrets and
personal identifiers masked. The command modules import from here; aggregator/cli/__init__.py
registers them on `cli`.
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
from aggregator.errors import EXIT_FAILED, EXIT_USAGE, AggregatorError
from aggregator.lock import LockHeld
from aggregator.logs import (
    IN_SUMMARY,
    printable,
    redact,
    secret_env_names,
    setup_logging,
    teardown_logging,
    watch_secrets,
)
from aggregator.pipeline import reading

__all__ = ["cli", "fail", "get_config", "get_engine", "progress"]

log = logging.getLogger("aggregator")


def fail(message: str) -> NoReturn:
    """End the command with exit 1 and `message` as the one line on stderr."""
    raise AggregatorError(message)


class _Failed(click.ClickException):
    exit_code = EXIT_FAILED


class _Usage(click.ClickException):
    exit_code = EXIT_USAGE


def _exit_for(exc: AggregatorError) -> click.ClickException:
    """The one-line exit for one of the project's errors, with its exit code."""
    if isinstance(exc, ConfigError) and len(exc.problems) > 1:
        lines = "\n".join(f"  {p}" for p in exc.problems)
        message = f"{exc.path} has {len(exc.problems)} problems:\n{lines}"
    elif isinstance(exc, LockHeld):
        message = f"{exc}: wait for it to finish (`aggregator status` shows it)"
    else:
        message = str(exc)
    if exc.exit_code == EXIT_USAGE:  # the user's own command or files, said as they are
        return _Usage(message)
    message = redact(message)  # what failed may quote a secret or a post
    log.error("%s", message, extra=IN_SUMMARY)  # --log-file keeps it; click prints it on stderr
    return _Failed(message)


class _Group(click.Group):
    """The command group. Every command's errors end here (see the module's docstring).

    A reader that closes the pipe early (`export | head`) is a normal end for every command, and
    for --help and --version: exit 0, no message. (Click itself ends with exit 1 then, so it is
    caught here, before click's own handler.)"""

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
        except AggregatorError as exc:
            raise _exit_for(exc) from None
        except OSError as exc:  # e.g. a folder that is not writable, or a full disk
            if exc.errno is None:  # not the system's (jinja2's TemplateNotFound is an OSError)
                raise
            failed = AggregatorError(f"cannot write {exc.filename or 'a file'}: {exc.strerror}")
            raise _exit_for(failed) from None


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
    """The config, with its curation file checked (a bad one is a config error too: nothing runs).

    :raises ConfigError: either file is unusable.
    """
    config = load_config(ctx.find_root().obj)
    load_curation(config)
    watch_secrets(secret_env_names(config.raw))  # never log what the *_env variables hold
    return config


def get_engine(config: Config) -> Engine:
    """The database for a reading command (`pipeline.reading`), closed when the command ends."""
    return click.get_current_context().with_resource(reading(config))


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
