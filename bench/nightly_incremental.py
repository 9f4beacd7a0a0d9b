"""Nightly incremental cost: the nightly run twice on a fresh project, the second with no new post.

    python bench/nightly_incremental.py /tmp/bench100k [--runs 3] [--profile 25]

Each run is a fresh process with a fresh project whose one source is the event's JSONL file:
`pipeline.run_nightly` (what `aggregator run` and every scheduled run do: collect, tag, analyse,
report, under the writers' lock, with the run log and alerts), then the same again with nothing
new in the file. Target: the second run under 5% of the first. `--profile` profiles the second.
"""

from __future__ import annotations

from pathlib import Path

from _common import (
    Result,
    footer,
    header,
    in_child,
    median,
    memory_line,
    new_project,
    options,
    parse,
    runs,
    scratch,
    seconds_line,
    timed,
    verdict,
)

from aggregator.config import load_config
from aggregator.pipeline import run_nightly

TARGET = 0.05


def nightly_twice(event: Path, under: Path, top: int = 0) -> Result:
    """Two nightly runs on a fresh project; the second profiled when `top` is set."""
    project = new_project(event, under)
    config = load_config(project / "config.toml")
    first = timed(lambda: run_nightly(config))
    again = timed(lambda: run_nightly(config), top)
    return {
        "first": first.wall, "first_cpu": first.cpu, "posts": first.result.collected.new_posts,
        "again": again.wall, "again_cpu": again.cpu, "new": again.result.collected.new_posts,
        "profile": again.hot,
    }  # fmt: skip


def main() -> int:
    args = parse(options(__doc__.splitlines()[0]))
    header("nightly_incremental", args.event, args.runs)
    with scratch() as under:
        done = [in_child(nightly_twice, args.event, under) for _ in range(args.runs)]
        print(
            f"  the first run collected {done[0]['posts']:,} posts, the second {done[0]['new']:,}"
        )
        print(seconds_line("nightly run, first", runs(done, "first"), runs(done, "first_cpu")))
        print(
            seconds_line("nightly run, nothing new", runs(done, "again"), runs(done, "again_cpu"))
        )
        ratio = median(runs(done, "again")) / median(runs(done, "first"))
        print(f"  {'second run / first':<34} {ratio:8.1%}     target < {TARGET:.0%}: "
              f"{verdict(ratio, TARGET, 'lower')}")  # fmt: skip
        print(memory_line("nightly (both runs)", done))
        if args.profile:
            print("second run, nothing new:")
            print(in_child(nightly_twice, args.event, under, args.profile)["profile"])
    footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
