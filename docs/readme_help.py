"""Regenerate the README's command reference from the real `--help` of every command.

Run `python docs/readme_help.py` after changing a command; a test fails while the README is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- cli-help:start -->", "<!-- cli-help:end -->"


def render_help() -> str:
    from aggregator.cli import cli

    runner = CliRunner()
    parts = []
    for args in ([], *([name] for name in cli.list_commands(None))):  # type: ignore[arg-type]
        result = runner.invoke(cli, [*args, "--help"], prog_name="aggregator", terminal_width=100)
        title = " ".join(["aggregator", *args])
        parts.append(f"### `{title}`\n\n```\n{result.output.rstrip()}\n```\n")
    return "\n".join(parts)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        print(f"README.md has no {START} ... {END} block", file=sys.stderr)
        return 1
    readme.write_text(
        pattern.sub(lambda _: f"{START}\n{render_help()}{END}", text), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
