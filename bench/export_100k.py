"""Export memory and time on 10,000 and 100,000 synthetic posts: peak memory should not grow with size.

Run: python bench/export_100k.py [POSTS ...]   (numbers are printed, never asserted)
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.config import load_config  # noqa: E402
from connectors.base import Page, Post  # noqa: E402
from reports.export import export  # noqa: E402
from reports.export_options import ExportOptions  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.queries import save_page  # noqa: E402

START = datetime(2016, 11, 28, 9, tzinfo=UTC)


def _post(i: int) -> Post:
    who, other = i % 5000, (i + 1) % 5000
    return Post(
        "mastodon",
        f"https://example.org/users/user{who}/statuses/{i}",
        START + timedelta(seconds=i),
        f"user{who}@example.org",
        f"Post {i} by @user{other} on #CoPro16 " + "words " * 30,
        author_name=f"Person {who}",
        hashtags=["CoPro16"],
        mentions=[f"user{other}@example.org"],
        links=[f"https://example.org/{i}"],
        likes=i % 7,
        raw={"n": i},
    )


def fill(engine, count: int, page: int = 2000) -> None:
    for first in range(0, count, page):
        save_page(engine, "bench", Page([_post(i) for i in range(first, min(first + page, count))]))


class Discard(io.TextIOBase):
    """An output that keeps nothing, so only the exporter's own memory is measured."""

    def write(self, s: str) -> int:
        return len(s)


def measure(engine, config, options: ExportOptions) -> tuple[float, float]:
    tracemalloc.start()
    began = time.perf_counter()
    export(engine, config, Discard(), options)
    elapsed = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return elapsed, peak


def main(sizes: list[int]) -> None:
    for size in sizes:
        folder = Path(tempfile.mkdtemp())
        try:
            shutil.copy(ROOT / "config.toml", folder / "config.toml")
            shutil.copytree(ROOT / "examples", folder / "examples")
            config = load_config(folder / "config.toml")
            engine = open_database(config.database_url)
            fill(engine, size)
            runs = [
                ("csv", ExportOptions()),
                ("jsonl", ExportOptions(fmt="jsonl")),
                ("csv pseudonymised", ExportOptions(key=b"bench-key-0123456789")),
            ]
            for label, options in runs:
                elapsed, peak = measure(engine, config, options)
                print(f"{size:>8} posts  {label:<18} {elapsed:6.1f} s  peak {peak:6.1f} MiB")
            engine.dispose()
        finally:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000])
