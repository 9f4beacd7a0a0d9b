"""Helpers for the story tests: the labelled sets imported as posts, posts placed in sessions, the
story written and read back in its three formats."""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from aggregator.config import Config, load_config
from aggregator.pipeline import analyse, report, tag
from connectors.base import Page, Post
from storage.db import open_database
from storage.models import Assignment, PostRow
from storage.queries import save_page
from tests.helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures"
EDITORIAL = FIXTURES / "editorial" / "labelled.jsonl"
SAFEGUARDING = FIXTURES / "safeguarding" / "labelled.jsonl"
_ids = itertools.count(1)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def url(post_id: str) -> str:
    return f"https://example.org/@x/{post_id}"


def editorial_posts() -> list[Post]:
    """The editorial labelled set as Mastodon posts, at the times it gives."""
    return [
        Post("mastodon", r["id"], datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")),
             r["author"], r["text"], url=url(r["id"]))
        for r in records(EDITORIAL)
    ]  # fmt: skip


def safeguarding_posts(config: Config) -> list[Post]:
    """The safeguarding labelled set as Mastodon posts spread over the sessions, each author's
    profile (`bio`) as Mastodon gives it (account.note, HTML)."""
    start, end = config.sessions[0].start, config.sessions[-1].end
    step = (end - start) / len(records(SAFEGUARDING))
    return [
        Post("mastodon", r["id"], start + step * n, f"s{n}@example.org", r["text"], url=url(r["id"]),
             likes=50, raw={"account": {"note": f"<p>{r['bio']}</p>"}} if r.get("bio") else {})
        for n, r in enumerate(records(SAFEGUARDING))
    ]  # fmt: skip


def post(config: Config, session: str, minutes: float, text: str, author: str = "ana@example.org",
         **kw: Any) -> Post:  # fmt: skip
    """A post `minutes` after `session` starts (negative: before it; past its end: after it)."""
    n = next(_ids)
    when = config.session(session).start + timedelta(minutes=minutes)
    kw.setdefault("url", url(f"t{n}"))
    return Post("mastodon", f"t{n}", when.astimezone(UTC), author, text, **kw)


def store(engine: Any, config: Config, *posts: Post) -> None:
    save_page(engine, "test", Page(list(posts)))
    tag(engine, config)
    analyse(engine)


def pin(engine: Any, *post_ids: str) -> None:
    """Pin posts as an organiser's [[highlight]] does, without a curation file."""
    posts, assignments = PostRow.__table__, Assignment.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        pks = select(posts.c.id).where(posts.c.post_id.in_(post_ids))
        conn.execute(
            update(assignments).where(assignments.c.post_pk.in_(pks)).values(highlight=True)
        )


@dataclass
class Written:
    """The story's three files, read back."""

    html: str
    markdown: str
    json: dict[str, Any]
    files: dict[str, Path]

    def part(self, part_id: str) -> dict[str, Any]:
        return next(p for p in self.json["parts"] if p["id"] == part_id)

    @property
    def everything(self) -> str:
        return self.html + self.markdown + json.dumps(self.json, ensure_ascii=False)


def write(engine: Any, config: Config, review: bool = False) -> Written:
    files = report(engine, config, review=review)
    return Written(files["html"].read_text(encoding="utf-8"),
                   files["markdown"].read_text(encoding="utf-8"),
                   json.loads(files["json"].read_text(encoding="utf-8")), files)  # fmt: skip


def project_copy(folder: Path, extra: str = "") -> Config:
    """config.toml and examples/ as shipped in `folder`, with `extra` TOML appended."""
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    shutil.copytree(ROOT / "examples", folder / "examples")
    if extra:
        with (folder / "config.toml").open("a", encoding="utf-8") as fh:
            fh.write("\n" + extra)
    return load_config(folder / "config.toml")


def engine_for(config: Config) -> Any:
    return open_database(config.database_url)
