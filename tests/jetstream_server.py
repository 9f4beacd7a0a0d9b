"""A local Jetstream for tests: a WebSocket server on 127.0.0.1 replaying a recording
(tests/fixtures/jetstream/recording.jsonl) as the real service serves its `/subscribe` endpoint.

What it honours of the real query: `cursor` (events from that time_us on; none: from the first
event it keeps, as a replay), `compress=true` (each message a zstd frame made with `dictionary`),
`wantedCollections` (recorded, for the tests to check). It keeps only the events from `oldest` on
(a cursor before that starts at `oldest`: the replay window), may close each connection after
`close_after` messages (a server dropping its clients), and paces messages `pace` seconds apart.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import zstandard
from websockets.sync.server import Server, ServerConnection, serve

RECORDING = Path(__file__).resolve().parent / "fixtures" / "jetstream" / "recording.jsonl"


def recording() -> list[str]:
    """The recording's messages, as sent on the wire (hostile ones included)."""
    return RECORDING.read_text(encoding="utf-8").splitlines()


def time_of(message: str, before: int) -> int:
    """A message's time_us; one without a readable time goes with the message before it."""
    try:
        value = json.loads(message).get("time_us")
    except (ValueError, AttributeError):
        return before
    return value if isinstance(value, int) else before


@dataclass
class Replay:
    messages: list[str]
    oldest: int | None = None  # the first time_us kept (the replay window's start)
    close_after: int | None = None  # messages per connection, then the server closes it
    pace: float = 0.0  # seconds between messages
    dictionary: bytes | None = None
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    url: str = ""

    def timed(self) -> list[tuple[int, str]]:
        out, before = [], 0
        for message in self.messages:
            before = time_of(message, before)
            out.append((before, message))
        return out

    def handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query) if ws.request else {}
        self.queries.append(query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        start = max(cursor or 0, self.oldest or 0)
        compress = query.get("compress") == ["true"]
        params = zstandard.ZstdCompressionDict(self.dictionary) if self.dictionary else None
        encoder = zstandard.ZstdCompressor(dict_data=params) if compress else None
        sent = 0
        for when, message in self.timed():
            if when < start:
                continue
            if self.close_after is not None and sent >= self.close_after:
                ws.close()
                return
            ws.send(encoder.compress(message.encode()) if encoder else message)
            sent += 1
            if self.pace:
                time.sleep(self.pace)
        try:
            for _ in ws:  # stay open, as a quiet stream does, until the client leaves
                pass
        except Exception:
            return


@contextmanager
def jetstream(replay: Replay) -> Iterator[Replay]:
    """The replay served on 127.0.0.1 in a thread; `replay.url` is its /subscribe address."""
    server: Server = serve(replay.handle, "127.0.0.1", 0, compression=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    replay.url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/subscribe"
    try:
        yield replay
    finally:
        server.shutdown()
        thread.join(5)


def train_dictionary(messages: list[str], size: int = 4096) -> bytes:
    """A zstd dictionary trained on events shaped like the recording's (the service's own cannot
    be downloaded here)."""
    samples: list[bytes | bytearray | memoryview] = []
    samples += [m.encode() for m in messages] * 40
    samples += [m.replace("3l", f"{n}x").encode() for n in range(60) for m in messages]
    return zstandard.train_dictionary(size, samples).as_bytes()
