"""A synthetic event for the benchmarks: N posts in our JSONL interchange format and a config for them.

    python bench/generate.py --posts 100000 --out /tmp/bench100k [--seed 2016]

Makes OUT/posts.jsonl (docs/jsonl.md; `aggregator import OUT/posts.jsonl` reads it) and
OUT/config.toml: the bundled programme (config.toml at the repo root: sessions, speakers,
keywords, hashtags) with one `jsonl` source reading posts.jsonl, so `aggregator run` collects it.

The same seed and size give the same bytes. Posts are written as they are made, oldest first, so
a million never sit in memory (a ring of recent posts feeds the replies, reposts and quotes).

What the posts look like, so that every stage has its real work:
- text about 200 characters on average (log-normal, cut to each platform's limit; blog entries
  longer), in sentences from a varied vocabulary, some in other languages, emoji, curly quotes,
  and a few cells a spreadsheet would run as formulas (`+1 …`, `=…`);
- 20,000 authors at 100,000 posts (authors grow as posts^0.8: about 3,200 at 10k, 126,000 at 1M),
  a few prolific and many heard once; on mastodon, bluesky, x and a few blogs (`feed`);
- 70% of posts during the programme day's sessions, the rest on the days around it; about half
  name a cue of the live session (a speaker, keyword or session hashtag, written in the forms
  people use: `#LegClub`, `@BeckyMalby`, `LEG CLUB`), some another session's or a shared one;
- replies (20%, to recent posts), reposts (12%), quotes (4%), mentions, links from a pool of
  shared articles, images with and without alt text, edits, and about 1% of lines a later copy
  of a post already written (higher counts), as overlapping archives have.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any, ClassVar

from _common import ROOT
from _words import (
    ADJECTIVES,
    ALTS,
    CUE_SENTENCES,
    EXTRA_TAGS,
    FIRST,
    FORMULA_STARTS,
    INSTANCES,
    LAST,
    OTHER_LANGUAGES,
    ROLES,
    SENTENCES,
    TOPICS,
)

from aggregator.config import load_config
from aggregator.settings import Config, SessionConfig

AUTHORS_AT_100K = 20_000
MEAN_LENGTH = 200
IN_SESSIONS = 0.70  # share of posts while a session runs
RING = 4000  # recent posts kept for replies, reposts and quotes
EXAMPLE_SOURCE = 'name = "example"\ntype = "jsonl"\npath = "examples/transformathon-2016.jsonl"'
SYNTHETIC_SOURCE = 'name = "synthetic"\ntype = "jsonl"\npath = "posts.jsonl"'

PLATFORMS = (("mastodon", 45), ("bluesky", 30), ("x", 22), ("feed", 3))
MAX_LENGTH = {"mastodon": 500, "bluesky": 300, "x": 280, "feed": 2000}
# the key naming a reply's, repost's or quote's parent, and the count it adds to
POINTER = {"reply": "reply_to", "repost": "repost_of", "quote": "quote_of"}
COUNTED = {"reply": "replies", "repost": "reposts", "quote": "quotes"}


def author_count(posts: int) -> int:
    """Distinct authors: 20,000 at 100,000 posts, growing as posts^0.8 (Heaps-like)."""
    return max(10, round(AUTHORS_AT_100K * (posts / 100_000) ** 0.8))


@dataclass(frozen=True)
class Author:
    platform: str
    account: str
    name: str
    mention: str  # how a post names them: @account as the platform writes it


def author(k: int) -> Author:
    """The k-th author, from k alone (no table: a million posts' authors need no memory)."""
    spread = (k * 2654435761) % 2**32
    share, platform = spread % 100, "feed"
    for name, weight in PLATFORMS:
        if share < weight:
            platform = name
            break
        share -= weight
    first, last = FIRST[spread % len(FIRST)], LAST[(spread >> 8) % len(LAST)]
    plain = f"{first}{last}".replace("'", "").lower()
    if platform == "mastodon":
        account = f"{plain}{k}@{INSTANCES[(spread >> 16) % len(INSTANCES)]}"
        mention = account.split("@")[0]
    elif platform == "bluesky":
        account = mention = f"{plain}{k}.bsky.example"
    elif platform == "x":
        account = mention = f"{first}{last[:3]}{k}".replace("'", "")
    else:
        account = f"blog{k}.example.org"
        mention = ""
    return Author(platform, account, f"{first} {last}", mention)


def hash_of(text: str) -> int:
    """A stable number for a text (Python's own hash changes between runs)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest())


class Timeline:
    """How many posts fall in each minute of the week around the event (exactly `posts` in all),
    and which session each minute belongs to."""

    # activity by local hour, and by day relative to the event's (the days around it quieter)
    HOURLY = (2, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 10, 10, 10, 10, 9, 9, 9, 9, 10, 10, 9, 6, 4)
    DAYS: ClassVar[dict[int, float]] = {-3: 0.4, -2: 0.8, -1: 1.6, 0: 3.0, 1: 1.5, 2: 0.6}

    def __init__(self, config: Config, posts: int, rng: random.Random) -> None:
        sessions = config.sessions
        tz = config.event.timezone
        day = sessions[0].start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        self.start = (day + timedelta(days=min(self.DAYS))).astimezone(UTC)
        minutes = (max(self.DAYS) - min(self.DAYS) + 1) * 1440
        self.sessions: list[int | None] = []
        background, live = [], []
        for m in range(minutes):
            when = self.start + timedelta(minutes=m)
            local = when.astimezone(tz)
            found = self._live(sessions, when)
            self.sessions.append(found)
            noise = rng.lognormvariate(0, 0.3)
            level = self.DAYS[(local.date() - day.date()).days] * self.HOURLY[local.hour]
            background.append(0.0 if found is not None else level * noise)
            if found is not None:  # busiest just after a session starts
                into = (when - sessions[found].start).total_seconds() / 60
                live.append((1.0 + 1.5 * math.exp(-into / 20)) * noise)
            else:
                live.append(0.0)
        scale = IN_SESSIONS / (1 - IN_SESSIONS) * sum(background) / max(sum(live), 1e-9)
        weights = [b + scale * s for b, s in zip(background, live, strict=True)]
        total = sum(weights)
        ends = [round(posts * c / total) for c in accumulate(weights)]
        self.counts = [b - a for a, b in zip([0, *ends], ends, strict=False)]

    @staticmethod
    def _live(sessions: tuple[SessionConfig, ...], when: datetime) -> int | None:
        for i, s in enumerate(sessions):
            if s.start <= when < s.end:
                return i
        return None

    def instants(self, rng: random.Random) -> Iterator[tuple[datetime, int | None]]:
        """Every post's time, oldest first, with the session live then."""
        for m, count in enumerate(self.counts):
            base = self.start + timedelta(minutes=m)
            for offset in sorted(rng.random() * 60 for _ in range(count)):
                yield base + timedelta(seconds=offset), self.sessions[m]


class Cues:
    """What people write that names a session: its speakers, keywords and hashtags, in the forms
    people type them."""

    def __init__(self, config: Config) -> None:
        self.by_session = [self._forms(s) for s in config.sessions]
        counts: dict[str, int] = {}
        for s in config.sessions:
            for name in s.speakers:
                counts[name] = counts.get(name, 0) + 1
        self.shared = sorted(n for n, c in counts.items() if c > 1) or ["the panel"]

    @staticmethod
    def _forms(session: SessionConfig) -> list[str]:
        forms: list[str] = []
        for phrase in (*session.speakers, *session.keywords):
            camel = re.sub(r"[^\w]", "", phrase.title())
            forms += [phrase, phrase, phrase.lower(), phrase.upper(), f"#{camel}"]
        for name in session.speakers:
            forms.append("@" + re.sub(r"[^\w]", "", name))
        forms += [f"#{tag}" for tag in session.hashtags]
        return forms or [session.title]


class Recent:
    """The last RING posts of one platform, for replies, reposts, quotes and later copies."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.added = 0

    def __len__(self) -> int:
        return len(self.posts)

    def add(self, post: dict[str, Any]) -> None:
        if len(self.posts) < RING:
            self.posts.append(post)
        else:
            self.posts[self.added % RING] = post
        self.added += 1

    def pick(self, rng: random.Random) -> dict[str, Any]:
        """A recent post, the latest far more often."""
        back = int(len(self.posts) * rng.random() ** 3)
        return self.posts[(self.added - 1 - back) % len(self.posts)]


class Writer:
    """Makes each post in turn and writes it as one JSONL line."""

    def __init__(self, config: Config, posts: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.posts = posts
        self.timeline = Timeline(config, posts, self.rng)
        self.cues = Cues(config)
        self.event_tags = config.event.hashtags
        self.authors = author_count(posts)
        self.seen_authors = 0
        self.recent = {name: Recent() for name, _ in PLATFORMS}
        self.links = [f"https://news.example.org/{t.replace(' ', '-')}/{n}" for t in TOPICS
                      for n in range(40)]  # fmt: skip
        self.stats = {"lines": 0, "replies": 0, "reposts": 0, "quotes": 0, "copies": 0, "chars": 0}

    def lines(self) -> Iterator[str]:
        """Every line of the file, oldest post first."""
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        for n, (when, session) in enumerate(self.timeline.instants(self.rng)):
            post = self.post(n, when, session)
            self.stats["chars"] += len(post["text"])
            yield dumps(post)
            recent = self.recent[post["platform"]]
            if len(recent) and self.rng.random() < 0.01:
                yield dumps(self.later_copy(recent.pick(self.rng)))
                self.stats["copies"] += 1
            recent.add(post)

    def pick_author(self, n: int) -> int:
        """A new author often enough that exactly `authors` have posted by the end; otherwise one
        already heard from, the earliest (the regulars) far more often."""
        rng = self.rng
        fresh = (self.authors - self.seen_authors) / (self.posts - n)
        if self.seen_authors == 0 or rng.random() < fresh:
            self.seen_authors += 1
            return self.seen_authors - 1
        return int(self.seen_authors * rng.random() ** 2.5)

    def post(self, n: int, when: datetime, session: int | None) -> dict[str, Any]:
        rng = self.rng
        who = author(self.pick_author(n))
        roll = rng.random()
        recent = self.recent[who.platform]
        parent = recent.pick(rng) if len(recent) and roll < 0.36 else None
        kind = (
            "reply" if roll < 0.20 else "repost" if roll < 0.32 else "quote" if roll < 0.36 else ""
        )
        if parent is None:
            kind = ""
        if kind:
            self.stats[COUNTED[kind]] += 1
        mentions: list[str] = []
        links: list[str] = []
        if kind == "repost":
            text = parent["text"]
            if who.platform == "x":
                text = f"RT @{parent['author'].split('@')[0]}: {text}"[:280]
        else:
            opening = ""
            if kind == "reply" and parent["author"] != who.account:
                opening = f"@{parent['author'].split('@')[0]} "
                mentions.append(parent["author"])
            text, lang = self.text(who, session, opening, mentions, links)
        post_id, url = self.identity(who, n, when)
        created = when.strftime("%Y-%m-%dT%H:%M:%S")
        if who.platform == "bluesky":
            created += f".{when.microsecond // 1000:03d}"
        line: dict[str, Any] = {
            "platform": who.platform, "id": post_id, "created_at": created + "Z",
            "author": who.account, "author_name": who.name, "text": text, "url": url,
        }  # fmt: skip
        if kind:
            line[POINTER[kind]] = parent["id"]
        likes = int(rng.expovariate(0.35) * (40 if rng.random() < 0.01 else 1))
        line |= {"likes": likes, "reposts": int(likes * rng.random() * 0.4),
                 "replies": int(rng.expovariate(1.2)), "quotes": int(rng.expovariate(4))}  # fmt: skip
        line["lang"] = parent.get("lang") if kind == "repost" else lang
        if rng.random() < 0.9:  # as platforms give them; otherwise the reader finds them in text
            line["hashtags"] = list(dict.fromkeys(re.findall(r"#(\w+)", text)))
            line["mentions"] = mentions
            line["links"] = links
        if rng.random() < 0.08:
            line["media"] = [
                {"url": f"https://media.example.org/{n}/{k}.jpg", "type": "image",
                 "alt": rng.choice(ALTS)}
                for k in range(1 + int(rng.expovariate(1.5)))
            ]  # fmt: skip
        if rng.random() < 0.02:
            edited = when + timedelta(minutes=rng.uniform(1, 90))
            line["edited_at"] = edited.strftime("%Y-%m-%dT%H:%M:%SZ")
        return line

    def identity(self, who: Author, n: int, when: datetime) -> tuple[str, str]:
        """The post's id and link as its platform writes them."""
        stamp = int(when.timestamp() * 1000)
        if who.platform == "mastodon":
            user, host = who.account.split("@")
            status = f"{stamp << 16 | n % 65536}"
            return (
                f"https://{host}/users/{user}/statuses/{status}",
                f"https://{host}/@{user}/{status}",
            )
        if who.platform == "bluesky":
            key = f"3{stamp * 1000 + n % 1000:x}"
            did = f"{(hash_of(who.account)):032x}"[:24]
            return (f"at://did:plc:{did}/app.bsky.feed.post/{key}",
                    f"https://bsky.example/profile/{who.account}/post/{key}")  # fmt: skip
        if who.platform == "x":
            status = str(((stamp - 1288834974657) << 22) | (n % 4_194_304))
            return status, f"https://x.example/{who.account}/status/{status}"
        slug = f"https://{who.account}/2016/11/post-{n}"
        return slug, slug

    def text(
        self, who: Author, session: int | None, opening: str, mentions: list[str], links: list[str]
    ) -> tuple[str, str | None]:
        """A post's text after `opening` (a reply's @name), and its language; `mentions` and
        `links` are filled with what it names."""
        rng = self.rng
        ending = self.ending(mentions, links)
        target = rng.lognormvariate(math.log(MEAN_LENGTH) - 0.04, 0.6)
        room = int(target * (3 if who.platform == "feed" else 1)) - len(opening + ending) - 1
        lang_roll = rng.random()
        if lang_roll < 0.04:
            lang = rng.choice(tuple(OTHER_LANGUAGES))
            choices = OTHER_LANGUAGES[lang]
            body = self.fill([], room, lambda: rng.choice(choices))
        else:
            lang = "en" if lang_roll < 0.94 else None
            body = self.fill(self.cue(session), room, self.sentence)
        if rng.random() < 0.004:
            opening = rng.choice(FORMULA_STARTS) + opening
        text = opening + " ".join(body)
        limit = MAX_LENGTH[who.platform] - len(ending) - 1
        if len(text) > limit:  # the platform's limit: cut at a word, as clients do
            text = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
        return f"{text} {ending}".strip(), lang

    def ending(self, mentions: list[str], links: list[str]) -> str:
        """Hashtags, perhaps a mention and a link, as posts end."""
        rng = self.rng
        tail = [f"#{self.event_tags[0]}" if rng.random() < 0.93 else ""]
        if rng.random() < 0.25:
            tail.append(f"#{self.event_tags[-1]}")
        if rng.random() < 0.15:
            tail.append(f"#{rng.choice(EXTRA_TAGS)}")
        if rng.random() < 0.2:
            other = author(int(self.seen_authors * rng.random() ** 2))
            if other.mention:
                tail.insert(0, f"@{other.mention}")
                mentions.append(other.account)
        if rng.random() < 0.2:
            link = self.links[int(len(self.links) * rng.random() ** 2)]
            tail.append(link)
            links.append(link)
        return " ".join(t for t in tail if t)

    @staticmethod
    def fill(body: list[str], room: int, sentence: Callable[[], str]) -> list[str]:
        """Sentences after `body` while they fit in `room` characters (always at least one)."""
        length = sum(len(s) + 1 for s in body)
        while True:
            more = sentence()
            if length + len(more) > room and body:
                return body
            body.append(more)
            length += len(more) + 1

    def cue(self, session: int | None) -> list[str]:
        """A sentence naming a session as people do: the live session's about half the time,
        another's or a shared speaker now and then; or none."""
        rng = self.rng
        roll = rng.random()
        if session is not None and roll < 0.5:
            cue = rng.choice(self.cues.by_session[session])
        elif roll < 0.58:
            cue = rng.choice(rng.choice(self.cues.by_session))
        elif roll < 0.62:
            cue = rng.choice(self.cues.shared)
        else:
            return []
        return [rng.choice(CUE_SENTENCES).format(c=cue)]

    def sentence(self) -> str:
        rng = self.rng
        said = rng.choice(SENTENCES).format(
            topic=rng.choice(TOPICS), topic2=rng.choice(TOPICS),
            adj=rng.choice(ADJECTIVES), role=rng.choice(ROLES),
        )  # fmt: skip
        return said[0].upper() + said[1:]

    def later_copy(self, post: dict[str, Any]) -> dict[str, Any]:
        """A post written again, as a later archive has it: higher counts."""
        again = dict(post)
        again["likes"] = (again.get("likes") or 0) + 1 + int(self.rng.expovariate(0.2))
        again["replies"] = (again.get("replies") or 0) + int(self.rng.random() < 0.3)
        return again


def write_config(out: Path) -> Path:
    """OUT/config.toml: the bundled config with its example source reading posts.jsonl instead."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    if EXAMPLE_SOURCE not in text:
        raise SystemExit(
            "config.toml at the repo root has no example source "
            f"({EXAMPLE_SOURCE!r}): update EXAMPLE_SOURCE in bench/generate.py"
        )
    path = out / "config.toml"
    path.write_text(text.replace(EXAMPLE_SOURCE, SYNTHETIC_SOURCE), encoding="utf-8")
    return path


def generate(posts: int, out: Path, seed: int) -> dict[str, Any]:
    """Write OUT/posts.jsonl and OUT/config.toml; returns what was written."""
    out.mkdir(parents=True, exist_ok=True)
    writer = Writer(load_config(ROOT / "config.toml"), posts, seed)
    with (out / "posts.jsonl").open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as fh:
        for line in writer.lines():
            fh.write(line)
            fh.write("\n")
            writer.stats["lines"] += 1
    load_config(write_config(out))  # the programme read back from the new config: it loads
    return {"posts": posts, "authors": writer.seen_authors, **writer.stats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--posts", type=int, default=100_000, help="distinct posts (default 100000)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder to make (posts.jsonl, config.toml)"
    )
    parser.add_argument("--seed", type=int, default=2016, help="the same seed gives the same file")
    args = parser.parse_args(argv)
    if args.posts < 1:
        parser.error("--posts must be at least 1")
    started = time.perf_counter()
    made = generate(args.posts, args.out, args.seed)
    seconds = time.perf_counter() - started
    size = (args.out / "posts.jsonl").stat().st_size / 2**20
    print(
        f"{made['posts']:,} posts ({made['lines']:,} lines, {made['copies']:,} later copies) by "
        f"{made['authors']:,} authors; {made['replies']:,} replies, {made['reposts']:,} reposts, "
        f"{made['quotes']:,} quotes; mean text {made['chars'] / made['posts']:.0f} characters"
    )
    print(f"{args.out / 'posts.jsonl'} ({size:,.0f} MiB) and {args.out / 'config.toml'} "
          f"in {seconds:.1f} s ({made['posts'] / seconds:,.0f} posts/s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
