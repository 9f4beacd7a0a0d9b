"""Report speed: the one-off text analysis, then `report` on a loaded, tagged, analysed database,
and a second report with nothing new; with each one's peak memory.

    python bench/report_speed.py /tmp/bench100k [--runs 3] [--profile 25]

The event is imported and tagged once (set-up). Each analysis run analyses a fresh copy of that
database (`pipeline.analyse`: sentiment, terms, editorial classes, once per post); each report
run takes a fresh copy of an analysed one and runs `pipeline.report` (what `aggregator report`
runs: tag and analyse what is new, build the story, write index.html, report.md, story.json)
twice, the second with nothing new. Each run is a fresh process. Targets at a million posts:
report at most 60 s (projected linearly from this size) and at most 500 MB.
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
from aggregator.pipeline import analyse, report, writing

TARGET_1M = 60.0  # seconds for a report on a million analysed posts
TARGET_MB = 500


def analysis(tagged: Path, under: Path, top: int = 0) -> Result:
    """The one-off analysis of a fresh copy of the tagged database."""
    project = copy_project(tagged, under)
    config = load_config(project / "config.toml")
    with writing(config) as engine:
        run = timed(lambda: analyse(engine), top)
    return {"seconds": run.wall, "cpu": run.cpu, "analysed": run.result, "project": project,
            "profile": run.hot}  # fmt: skip


def reports(analysed: Path, under: Path, profile: str = "", top: int = 0) -> Result:
    """`report` twice on a fresh copy of the analysed database; `profile` names the run to
    profile ("first" or "again")."""
    project = copy_project(analysed, under)
    config = load_config(project / "config.toml")
    with writing(config) as engine:
        first = timed(lambda: report(engine, config), top if profile == "first" else 0)
        again = timed(lambda: report(engine, config), top if profile == "again" else 0)
    size = sum(path.stat().st_size for path in first.result.values()) / 2**20
    return {"first": first.wall, "first_cpu": first.cpu, "again": again.wall,
            "again_cpu": again.cpu, "size": size, "profile": first.hot or again.hot}  # fmt: skip


def main() -> int:
    args = parse(options(__doc__.splitlines()[0]))
    header("report_speed", args.event, args.runs)
    with scratch() as under:
        tagged = loaded_project(args.event, under, tag=True)
        posts = count_posts(tagged)
        analysed = [in_child(analysis, tagged, under) for _ in range(args.runs)]
        told = [in_child(reports, analysed[0]["project"], under) for _ in range(args.runs)]
        print(f"  {posts:,} posts, {analysed[0]['analysed']:,} analysed; "
              f"the report's files {told[0]['size']:.1f} MiB")  # fmt: skip
        print(seconds_line("analyse (one-off)", runs(analysed, "seconds"), runs(analysed, "cpu")))
        print(memory_line("analyse", analysed))
        first = median(runs(told, "first"))
        print(seconds_line("report", runs(told, "first"), runs(told, "first_cpu")))
        projected = first / posts * 1_000_000
        cpu = median(runs(told, "first_cpu")) / posts * 1_000_000
        print(f"  {'report, projected for 1M (linear)':<34} {projected:8.0f} s   target <= "
              f"{TARGET_1M:.0f} s: {verdict(projected, TARGET_1M, 'lower')} (CPU: {cpu:.0f} s)")  # fmt: skip
        print(seconds_line("report again, nothing new", runs(told, "again"),
                           runs(told, "again_cpu")))  # fmt: skip
        print(f"  {'second report / first':<34} {median(runs(told, 'again')) / first:8.1%}")
        print(memory_line("report (both runs)", told))
        peak = max(runs(told, "peak_mib")) * 2**20 / 1e6
        print(f"  {'report peak at this size':<34} {peak:8.0f} MB    target <= {TARGET_MB} MB "
              f"at 1M: {verdict(peak, TARGET_MB, 'lower')} here")  # fmt: skip
        if args.profile:
            print("analyse:")
            print(in_child(analysis, tagged, under, args.profile)["profile"])
            print("report:")
            print(
                in_child(reports, analysed[0]["project"], under, "first", args.profile)["profile"]
            )
            print("report again, nothing new:")
            print(
                in_child(reports, analysed[0]["project"], under, "again", args.profile)["profile"]
            )
    footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
