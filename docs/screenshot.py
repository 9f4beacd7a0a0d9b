"""Screenshot the bundled example's report with headless Chromium, at desktop and phone widths.

    python docs/screenshot.py        # writes docs/report-desktop.png and docs/report-phone.png
    python docs/screenshot.py --review   # and docs/review-desktop.png, the organisers' review page

The desktop shot is the top of the page down through the first session; the phone shot is the top
of the page. The report is built from config.toml and the bundled example (with examples/curation.toml, for the
organisers' notes and pins) in a temporary folder: your data/ and site/ are left alone. Needs Debian's `chromium` (apt-get install chromium) or CHROMIUM=/path/to/it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name: (width, height, device scale); the phone is drawn at 2x, as phones do
SHOTS = {"desktop": (1280, 4400, 1), "phone": (390, 1500, 2)}
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
]  # fmt: skip


def build(folder: Path, review: bool = False) -> Path:
    """The bundled example, collected, tagged and reported in `folder`; the HTML file (with
    `review`, the organisers' review page is written too, as `folder`/review.html)."""
    from aggregator.config import load_config
    from aggregator.pipeline import collect, report, tag
    from storage.db import open_database

    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    shutil.copytree(ROOT / "examples", folder / "examples")
    for extra in ROOT.glob("*.toml"):  # e.g. a curation file the config names
        if not (folder / extra.name).exists():
            shutil.copy(extra, folder / extra.name)
    config = load_config(folder / "config.toml")
    curation = folder / "examples" / "curation.toml"
    if config.curation is None and curation.is_file():  # show the organisers' notes and pins too
        config = dataclasses.replace(config, curation=curation)
    engine = open_database(config.database_url)
    try:
        collect(engine, config)
        tag(engine, config)
        return report(engine, config, review=review)["html"]
    finally:
        engine.dispose()


def shoot(browser: str, page: Path, out: Path, size: tuple[int, int, int], profile: Path) -> None:
    width, height, scale = size
    subprocess.run(  # noqa: S603 - our own argument list, no shell
        [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
         f"--force-device-scale-factor={scale}", f"--screenshot={out}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def main() -> int:
    browser = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not browser:
        print(
            "chromium not found: apt-get install chromium, or set CHROMIUM=/path/to/it",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        review = "--review" in sys.argv[1:]
        page = build(Path(tmp), review)
        shots = {f"report-{name}": (page, size) for name, size in SHOTS.items()}
        if review:
            shots["review-desktop"] = (Path(tmp) / "review.html", SHOTS["desktop"])
        for name, (path, size) in shots.items():
            out = ROOT / "docs" / f"{name}.png"
            with tempfile.TemporaryDirectory() as profile:  # a fresh profile: no state, no sync
                shoot(browser, path, out, size, Path(profile))
            print(f"{name}: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
