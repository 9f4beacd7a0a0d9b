"""Stand-ins for reports.features.features that the analysis tests hand to spawned workers: in a
module of their own, so a worker imports this and the analysis, not the test module and pytest."""

from __future__ import annotations

import os
from pathlib import Path

from reports.features import Features, features

PIDS = (
    "ANALYSE_TEST_PIDS"  # a folder each analysis notes its process in (spawned workers inherit it)
)
HOSTILE = "A hostile post"


def recording(text: str, profile: str | None) -> Features:
    """`features`, noting the process that ran it."""
    Path(os.environ[PIDS], str(os.getpid())).touch()
    return features(text, profile)


def raising(text: str, profile: str | None) -> Features:
    """`features`, but a post starting HOSTILE raises."""
    if text.startswith(HOSTILE):
        raise RecursionError("maximum recursion depth exceeded")
    return features(text, profile)


def crashing(text: str, profile: str | None) -> Features:
    """`features`, but a post starting HOSTILE ends the process at once, as a crash in a C
    extension or the out-of-memory killer would."""
    if text.startswith(HOSTILE):
        os._exit(70)
    return features(text, profile)
