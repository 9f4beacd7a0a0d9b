"""The Mastodon connector and the HTTP layer over real HTTP, against a tiny server on 127.0.0.1.
Nothing here waits on real time: the server never pauses, and the client's clock is injected."""

from __future__ import annotations

import gzip
import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from connectors.http import HttpClient, HttpError
from connectors.mastodon import MastodonConnector, id_key
from tests.helpers import FakeInstance, client, many, mastodon_source


class Handler(BaseHTTPRequestHandler):
    instance: FakeInstance  # set on the server's subclass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/endless":
            return self.stream(b"x" * 65536)
        if parts.path == "/drip":  # ends, so that a client missing its deadline fails, not hangs
            return self.stream(b"x", chunks=1000)
        code, body, headers = self.instance.page(parts.path, dict(parse_qsl(parts.query)))
        payload = gzip.compress(json.dumps(body).encode())  # as real instances send it
        self.send_response(code)
        for name, value in {**headers, "Content-Type": "application/json",
                            "Content-Encoding": "gzip"}.items():  # fmt: skip
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def stream(self, chunk: bytes, chunks: int | None = None) -> None:
        """A chunked body of `chunks` chunks, or one that never ends (until the client hangs up)."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for _ in itertools.repeat(None) if chunks is None else range(chunks):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            return

    def log_message(self, *args: object) -> None:  # keep test output quiet
        return


@pytest.fixture
def server() -> Iterator[tuple[str, FakeInstance]]:
    instance = FakeInstance("")
    handler = type("BoundHandler", (Handler,), {"instance": instance})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    instance.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield instance.base, instance
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_pages_back_and_forward_over_real_http(server):
    base, instance = server
    instance.statuses = many(90)
    sleeps: list[float] = []
    with HttpClient(sleep=sleeps.append) as http:
        conn = MastodonConnector(mastodon_source(instance=base), http=http, env={})
        first = list(conn.fetch(None))
        got = [p.raw["id"] for page in first for p in page.posts]
        assert sorted(got, key=id_key) == [str(n) for n in range(1, 91)]
        assert [r.get("max_id") for r in instance.requests] == [None, "51", "11", "1"]
        instance.statuses += many(5, start=91)
        second = list(conn.fetch(first[-1].cursor))
    assert [p.raw["id"] for page in second for p in page.posts] == ["95", "94", "93", "92", "91"]
    assert instance.requests[-2:] == [
        {"limit": "40", "min_id": "90"},
        {"limit": "40", "min_id": "95"},
    ]
    assert sleeps == []


def test_case_14_endless_body_over_real_http_is_cut_at_the_cap(server):
    base, _ = server
    with HttpClient(max_bytes=512 * 1024) as http, pytest.raises(HttpError, match="cap"):
        http.get(f"{base}/endless")


def test_case_14_slow_drip_over_real_http_is_cut_at_the_deadline(server):
    base, _ = server
    ticks = itertools.count(step=0.1)  # the client's clock: a tenth of a second per chunk read
    with (
        HttpClient(deadline=0.5, clock=lambda: next(ticks)) as http,
        pytest.raises(HttpError, match=r"still arriving after 0\.5s"),
    ):
        http.get(f"{base}/drip")


def test_case_04_refused_connection_is_retried_then_reported(config):
    with client(timeout=1) as refused:
        sleeps: list[float] = []
        http = HttpClient(refused, sleep=sleeps.append, max_attempts=3)
        with pytest.raises(HttpError, match=r"connection failed \(ConnectError\) after 3 attempts"):
            http.get("http://127.0.0.1:9/api/v1/timelines/tag/CoPro16")  # discard port: refused
    assert len(sleeps) == 2
