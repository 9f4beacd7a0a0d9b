"""What every benchmark shares: the options, runs in a fresh process (timed, with their peak
memory), medians, fresh projects made from a generated event, the machine, and profiles.

A figure is measured in a spawned child process, so each run starts cold and its peak resident
memory is its own; `base` is the child's peak once the benchmark's modules are imported, so
`peak - base` is what the work itself added. Nothing here asserts: the scripts print.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import multiprocessing
import os
import platform
import pstats
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Generic, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the package itself, even without the editable install
    sys.path.insert(1, str(ROOT))

T = TypeVar("T")
Result = dict[str, Any]
DATABASE = Path("data") / "aggregator.db"  # where the generated config.toml keeps it


# -- options -----------------------------------------------------------------------------------


def options(description: str, event: bool = True) -> argparse.ArgumentParser:
    """The options every figure takes: the generated event's folder, runs, profiling."""
    parser = argparse.ArgumentParser(description=description)
    if event:
        parser.add_argument("event", type=Path, help="a folder made by bench/generate.py")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (default 3)")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N",
        help="then profile one more run in a child and list its N hottest functions",
    )  # fmt: skip
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options, with the event folder checked: one line saying what to run when it is not one."""
    args = parser.parse_args(argv)
    event = getattr(args, "event", None)
    if event is not None and not (event / "posts.jsonl").is_file():
        parser.error(
            f"{event} has no posts.jsonl: make it with "
            f"`python bench/generate.py --posts 100000 --out {event}`"
        )
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


# -- runs --------------------------------------------------------------------------------------


def rss_mib() -> float:
    """This process's peak resident memory so far, in MiB: VmHWM, which starts afresh when a
    process execs (ru_maxrss does not: it keeps the forking parent's, which is not this
    program's), else ru_maxrss where there is no /proc."""
    with suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(work: Callable[..., Result], args: tuple[Any, ...]) -> Result:
    logging.disable(logging.WARNING)  # the pipeline's warnings are not the figure
    base = rss_mib()
    result = work(*args)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {**result, "base_mib": base, "peak_mib": rss_mib(), "child_mib": children}


def in_child(work: Callable[..., Result], *args: Any) -> Result:
    """`work(*args)` (a module-level function returning a dict) in a fresh spawned process; its
    dict with `base_mib` (memory once the benchmark's modules are imported), `peak_mib`, and
    `child_mib`: the largest process it started itself (a worker, a tool), 0 if none; an upper
    bound, since Linux counts in it what the child had from its parent before it exec'd."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        return pool.submit(_run, work, args).result()


@dataclass(frozen=True)
class Timing(Generic[T]):
    wall: float  # seconds
    cpu: float  # CPU seconds of this process and of the processes it started and waited for
    result: T
    hot: str | None = None  # the profile, when one was asked for


def cpu_seconds() -> float:
    """CPU time so far of this process and of its children that have ended (workers, tools)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(action: Callable[[], T], profile: int = 0) -> Timing[T]:
    """One call timed; with `profile`, under cProfile, its `profile` hottest functions listed
    (the profile sees this process only, not the workers it starts)."""
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = profiler.runcall(action) if profiler else action()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return Timing(wall, cpu, result, profiler and hot_spots(profiler, profile))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def runs(results: Sequence[Result], key: str) -> list[float]:
    return [r[key] for r in results]


# -- projects ----------------------------------------------------------------------------------


@contextmanager
def scratch() -> Iterator[Path]:
    """A temporary folder for a benchmark's projects, removed at the end."""
    with tempfile.TemporaryDirectory(prefix="aggregator-bench-") as folder:
        yield Path(folder)


def new_project(event: Path, under: Path) -> Path:
    """A fresh project in `under`: the event's config.toml and its posts.jsonl (linked), no
    database yet."""
    folder = Path(tempfile.mkdtemp(prefix="project-", dir=under))
    shutil.copy(event / "config.toml", folder / "config.toml")
    (folder / "posts.jsonl").symlink_to((event / "posts.jsonl").resolve())
    return folder


def copy_project(project: Path, under: Path) -> Path:
    """A copy of a project and its database (SQLite's backup: whole, whatever the WAL holds)."""
    folder = Path(tempfile.mkdtemp(prefix="copy-", dir=under))
    shutil.copy(project / "config.toml", folder / "config.toml")
    (folder / "posts.jsonl").symlink_to((project / "posts.jsonl").resolve())
    (folder / DATABASE).parent.mkdir(parents=True)
    source, target = sqlite3.connect(project / DATABASE), sqlite3.connect(folder / DATABASE)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return folder


def loaded_project(event: Path, under: Path, *, tag: bool = False, analyse: bool = False) -> Path:
    """A project with the event imported as `aggregator import` does it, then tagged and analysed
    when asked; prints how long that took (set-up, not a figure)."""
    from aggregator.config import load_config
    from aggregator.pipeline import analyse as analyse_posts
    from aggregator.pipeline import import_file, writing
    from aggregator.pipeline import tag as tag_posts

    folder = new_project(event, under)
    config = load_config(folder / "config.toml")
    logging.disable(logging.WARNING)
    steps = ["import"]
    seconds = [timed(lambda: import_file(config, folder / "posts.jsonl")).wall]
    with writing(config) as engine:
        if tag:
            steps.append("tag")
            seconds.append(timed(lambda: tag_posts(engine, config)).wall)
        if analyse:
            steps.append("analyse")
            seconds.append(timed(lambda: analyse_posts(engine)).wall)
    logging.disable(logging.NOTSET)
    said = ", ".join(f"{s} {t:.1f} s" for s, t in zip(steps, seconds, strict=True))
    print(f"set-up (not timed as a figure): {said}", flush=True)
    return folder


def copy_lines(event: Path, folder: Path, fraction: float) -> Path:
    """An event folder holding the event's config and the first `fraction` of its lines."""
    folder.mkdir()
    shutil.copy(event / "config.toml", folder / "config.toml")
    keep = int(lines(event / "posts.jsonl") * fraction)
    with (event / "posts.jsonl").open("rb") as source, (folder / "posts.jsonl").open("wb") as out:
        out.writelines(islice(source, keep))
    return folder


def count_posts(project: Path) -> int:
    with sqlite3.connect(project / DATABASE) as conn:
        return conn.execute("SELECT count(*) FROM post").fetchone()[0]


# -- what is printed ---------------------------------------------------------------------------


def machine() -> str:
    """The machine in one line: cores, CPU, memory, Python, SQLite and the load average now."""
    cpu = "unknown CPU"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.1f} GiB RAM, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; {load()}"
    )


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def code() -> str:
    """The commit measured, and whether the work tree differs from it."""
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()  # fmt: skip
        changed = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "code: not a git checkout"
    return f"code: commit {commit}" + (" with uncommitted changes" if changed.strip() else "")


def header(title: str, event: Path | None, runs: int) -> None:
    what = f" on {event} ({lines(event / 'posts.jsonl'):,} lines)" if event else ""
    print(f"{title}{what}: median of {runs} run{'s' * (runs != 1)}")
    print(f"machine: {machine()}; {code()}", flush=True)


def lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def seconds_line(label: str, values: Sequence[float], cpu: Sequence[float] | None = None) -> str:
    """`label  median s  (each run; CPU median)`."""
    each = " ".join(f"{v:.2f}" for v in values)
    spent = f"; CPU {median(cpu):.2f} s" if cpu else ""
    return f"  {label:<34} {median(values):8.2f} s   (runs {each}{spent})"


def memory_line(label: str, results: Sequence[Result]) -> str:
    peak = max(r["peak_mib"] for r in results)
    base = median([r["base_mib"] for r in results])
    child = max(r.get("child_mib", 0) for r in results)
    workers = f"; its largest child process at most {child:.0f} MiB" if child else ""
    return f"  {label:<34} {peak:8.0f} MiB peak RSS ({base:.0f} MiB before the work{workers})"


def verdict(value: float, target: float, better: str) -> str:
    """'met' or 'MISSED' for a value against its target; `better` is 'higher' or 'lower'."""
    met = value >= target if better == "higher" else value <= target
    return "met" if met else "MISSED"


def footer() -> None:
    print(f"done; {load()}", flush=True)


def hot_spots(profiler: cProfile.Profile, top: int) -> str:
    """The `top` functions by their own time, and the project's own functions by cumulative time."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = [
        (own, cumulative, calls, _where(file, line, name))
        for (file, line, name), (_, calls, own, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
    ]
    total = max((r[1] for r in rows), default=0.0)
    out = [f"  profile: {total:.1f} s under cProfile (slower than unprofiled); by own time:",
           "     own s    cum s        calls  function"]  # fmt: skip
    out += [_profile_row(r) for r in sorted(rows, key=lambda r: -r[0])[:top]]
    ours = [r for r in rows if _ours(r[3])]
    out.append("  the project's own functions by cumulative time:")
    out += [_profile_row(r) for r in sorted(ours, key=lambda r: -r[1])[:top]]
    return "\n".join(out)


def _profile_row(row: tuple[float, float, int, str]) -> str:
    own, cumulative, calls, where = row
    return f"  {own:8.2f} {cumulative:8.2f} {calls:12,}  {where}"


def _where(file: str, line: int, name: str) -> str:
    if file == "~":
        return name  # a built-in
    path = Path(file)
    if path.is_relative_to(ROOT):
        file = str(path.relative_to(ROOT))
    elif "site-packages" in path.parts:
        file = str(Path(*path.parts[path.parts.index("site-packages") + 1 :]))
    else:
        file = path.name
    return f"{file}:{line}({name})"


def _ours(where: str) -> bool:
    return where.split("/", 1)[0] in ("aggregator", "connectors", "storage", "reports")
