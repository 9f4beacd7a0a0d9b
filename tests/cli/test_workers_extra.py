"""Without the postgres extra, the worker command says in one line what to install (exit 2)."""

from __future__ import annotations

import sys

from tests.helpers import invoke


def test_worker_without_the_postgres_extra_says_what_to_install(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "procrastinate", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "aggregator.distributed", raising=False)
    result = invoke(project, "worker")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines == [
        "Error: distributed workers need 'procrastinate', which is not installed: "
        "pip install '.[postgres]' (Procrastinate and the PostgreSQL driver)"
    ]
