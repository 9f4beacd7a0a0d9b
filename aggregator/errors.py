"""The one error base class. Every error the project raises on purpose is an `AggregatorError`
whose message is one line a comms officer can act on, and whose `exit_code` is what the CLI exits
with (translated in one place, `aggregator.cli`): 1 when something failed, 2 when the command or
its configuration is wrong and nothing ran.

Core layer: imports nothing of the project and no third-party library.
"""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "AggregatorError", "OutputError", "UsageError"]

EXIT_FAILED = 1  # a source, step or file failed; the summary says which
EXIT_USAGE = 2  # a usage or configuration error: fix the command or config.toml and run again


class AggregatorError(Exception):
    """Something the user can act on went wrong. `str(error)` is the one line to show."""

    exit_code: int = EXIT_FAILED


class UsageError(AggregatorError):
    """The command, one of its options or a file it was given is wrong: nothing ran."""

    exit_code = EXIT_USAGE


class OutputError(AggregatorError):
    """A file could not be written (its folder is missing or not writable, or the disk is full):
    the message names the file or folder and the system's reason."""
