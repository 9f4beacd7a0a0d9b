"""Tagging speed: every post of a loaded database tagged, then again with nothing new.

    python bench/tag_speed.py /tmp/bench100k [--runs 3] [--profile 25]

The event is imported once (set-up); each run tags a fresh copy of that database with
`pipeline.tag` (aggregator.tagstage.tag: what `aggregator tag` runs) in a fresh process, then
tags it again with no new post: the incremental run every nightly job pays. Targets: a million
posts tagged in at most 60 s (projected linearly from this size), and the incremental run under
5% of the first.
"""

from __future__ import annotations

from pathlib import Path

from _common import (
    Result,
    copy_project,
    count_posts,
    footer,
    header,
    in_child,
    loaded_project,
    median,
    memory_line,
    options,
    parse,
    runs,
    scratch,
    seconds_line,
    timed,
    verdict,
)

from aggregator.config import load_config
from aggregator.pipeline import tag, writing

TARGET_1M = 60.0  # seconds for a million posts
TARGET_AGAIN = 0.05  # the incremental run, as a share of the first


def tag_twice(loaded: Path, under: Path, profile: str = "", top: int = 0) -> Result:
    """Tag a fresh copy of the loaded database, then again; `profile` names the run to profile
    ("first" or "again")."""
    project = copy_project(loaded, under)
    config = load_config(project / "config.toml")
    with writing(config) as engine:
        first = timed(lambda: tag(engine, config), top if profile == "first" else 0)
        again = timed(lambda: tag(engine, config), top if profile == "again" else 0)
    return {
        "first": first.wall, "first_cpu": first.cpu, "tagged": first.result.tagged,
        "again": again.wall, "again_cpu": again.cpu, "retagged": again.result.tagged,
        "profile": first.hot or again.hot,
    }  # fmt: skip


def main() -> int:
    args = parse(options(__doc__.splitlines()[0]))
    header("tag_speed", args.event, args.runs)
    with scratch() as under:
        loaded = loaded_project(args.event, under)
        posts = count_posts(loaded)
        done = [in_child(tag_twice, loaded, under) for _ in range(args.runs)]
        first, again = median(runs(done, "first")), median(runs(done, "again"))
        print(f"  {posts:,} posts; the first run tagged {done[0]['tagged']:,}, "
              f"the second {done[0]['retagged']:,}")  # fmt: skip
        print(seconds_line("tag, every post", runs(done, "first"), runs(done, "first_cpu")))
        projected = first / posts * 1_000_000
        cpu = median(runs(done, "first_cpu")) / posts * 1_000_000
        print(f"  {'posts per second':<34} {posts / first:8,.0f}")
        print(f"  {'projected for 1M posts (linear)':<34} {projected:8.0f} s   target <= "
              f"{TARGET_1M:.0f} s: {verdict(projected, TARGET_1M, 'lower')} (CPU: {cpu:.0f} s)")  # fmt: skip
        print(seconds_line("tag again, nothing new", runs(done, "again"), runs(done, "again_cpu")))
        ratio = again / first
        print(f"  {'second run / first':<34} {ratio:8.1%}     target < {TARGET_AGAIN:.0%}: "
              f"{verdict(ratio, TARGET_AGAIN, 'lower')}")  # fmt: skip
        print(memory_line("tag (both runs)", done))
        if args.profile:
            print("first run:")
            print(in_child(tag_twice, loaded, under, "first", args.profile)["profile"])
            if ratio >= TARGET_AGAIN:
                print("second run, nothing new:")
                print(in_child(tag_twice, loaded, under, "again", args.profile)["profile"])
    footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
