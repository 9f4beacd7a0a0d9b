"""How long `analyse` and the report take on 100k posts. Timing lives here, never in the tests.

    python bench/report_100k.py                # 100,000 posts
    python bench/report_100k.py --posts 20000

Invents posts across the bundled programme's day (and the days around it) in a temporary SQLite file,
tags them, then times `analyse` (sentiment and terms, once per post) and the report (build_story +
write_report) twice: the second report is the nightly cost once every post has been analysed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPENERS = ["Brilliant point from", "Not sure I agree with", "Loving the energy from", "Listening to",
           "Hard truths from", "Still thinking about", "So much to learn from", "Worried by what"]  # fmt: skip
TOPICS = ["housing", "loneliness", "carers", "social prescribing", "link workers", "peer support",
          "digital exclusion", "waiting lists", "mental health", "young carers", "volunteers",
          "health inequalities", "patient leaders", "community assets", "co-design", "funding"]  # fmt: skip
ENDINGS = ["this is what coproduction looks like", "we need this in our area", "how do we scale this?",
           "we will take this back to our board", "what does good look like?", "brilliant and honest",
           "frankly disappointing", "I'm going to share this with my team", "the room went quiet",
           "more of this please", "who funds it?", "let's keep talking"]  # fmt: skip


def invented(config, n: int, seed: int = 5) -> Iterator[list]:
    """Pages of made-up posts: 80% during sessions, the rest in the days before and after."""
    from connectors.base import Post

    rng = random.Random(seed)
    people = [f"user{i}@example.org" for i in range(n // 6 + 1)]
    speakers = [s for session in config.sessions for s in session.speakers] or ["the panel"]
    first, last = config.sessions[0].start, config.sessions[-1].end
    page = []
    for i in range(n):
        if rng.random() < 0.8:
            when = first + (last - first) * rng.random()
        else:
            when = first + timedelta(days=rng.uniform(-5, 3))
        text = (f"{rng.choice(OPENERS)} {rng.choice(speakers)} on {rng.choice(TOPICS)} and "
                f"{rng.choice(TOPICS)}: {rng.choice(ENDINGS)} #{rng.choice(config.event.hashtags)}")  # fmt: skip
        media = (
            [{"url": f"https://example.org/m/{i}.png", "type": "image", "alt": "A slide"}]
            if i % 40 == 0
            else []
        )
        page.append(Post("mastodon", str(10**12 + i), when, rng.choice(people), text,
                         url=f"https://example.org/@x/{i}", likes=int(rng.expovariate(0.3)),
                         reposts=int(rng.expovariate(0.6)), links=[f"https://example.org/r/{i % 300}"] if i % 7 == 0 else [],
                         media=media, repost_of=str(i - 1) if i % 25 == 0 else None))  # fmt: skip
        if len(page) == 2000:
            yield page
            page = []
    if page:
        yield page


def timed(label: str, action):
    started = time.perf_counter()
    result = action()
    print(f"{label:<28} {time.perf_counter() - started:7.2f} s")
    return result


def main() -> int:
    from aggregator.config import load_config
    from aggregator.pipeline import analyse, tag
    from connectors.base import Page
    from reports.render import write_report
    from reports.story import build_story
    from storage.db import open_database
    from storage.queries import save_page

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(ROOT / "config.toml", folder / "config.toml")
        shutil.copytree(ROOT / "examples", folder / "examples")
        config = load_config(folder / "config.toml")
        engine = open_database(config.database_url)
        print(f"{args.posts:,} posts in {folder / 'data'}")
        timed(
            "store",
            lambda: [save_page(engine, "bench", Page(p)) for p in invented(config, args.posts)],
        )
        timed("tag", lambda: tag(engine, config))
        done = timed("analyse (first time)", lambda: analyse(engine))
        print(f"{'':<28} {done:,} posts analysed")
        timed("analyse (nothing new)", lambda: analyse(engine))
        for run in ("report", "report (again)"):
            files = timed(run, lambda: write_report(build_story(engine, config), folder / "site"))
        for fmt, path in files.items():
            print(f"{fmt:<28} {path.stat().st_size / 1024:7.0f} KiB")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
