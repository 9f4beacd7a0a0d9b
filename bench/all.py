"""Every figure of docs/performance.md in turn, on one generated event (made first if missing).

    python bench/all.py --posts 100000 [--out /tmp/bench100k] [--runs 3] [--profile 25]
    python bench/all.py --posts 10000 --only import_speed tag_speed

Each figure is its own command (bench/<name>.py EVENT); this runs them one after another, so the
machine is never asked for two at once, and prints what each prints.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from _common import ROOT, load

FIGURES = ("import_speed", "tag_speed", "report_speed", "export_speed", "nightly_incremental",
           "collect_concurrency")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="the event's folder (default /tmp/benchN)")
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=list(FIGURES))
    args = parser.parse_args()
    event = args.out or Path(f"/tmp/bench{args.posts // 1000}k")
    bench = ROOT / "bench"
    if not (event / "posts.jsonl").is_file():
        generate = [sys.executable, str(bench / "generate.py"), "--posts", str(args.posts),
                    "--out", str(event), "--seed", str(args.seed)]  # fmt: skip
        subprocess.run(generate, check=True)
    failed = []
    for name in args.only:
        print(flush=True)
        command = [sys.executable, str(bench / f"{name}.py"), str(event), "--runs", str(args.runs)]
        if args.profile:
            command += ["--profile", str(args.profile)]
        if subprocess.run(command, check=False).returncode:
            failed.append(name)
    print(f"\n{len(args.only) - len(failed)} of {len(args.only)} figures measured; {load()}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
