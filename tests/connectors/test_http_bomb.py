"""Case 43: a compressed body that expands past the size cap is aborted with memory bounded near
the cap. A gigabyte of zeros, gzipped to about a megabyte, in one chunk (respx) and from a server
on 127.0.0.1; peak Python memory measured with tracemalloc. And what the client asks for and
reads: gzip and deflate only, in bounded steps; anything else is one clear error."""

from __future__ import annotations

import functools
import gzip
import struct
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import respx

from connectors.http import HttpClient, HttpError

URL = "https://bomb.example/api/v1/timelines/tag/CoPro16"
MiB = 1024 * 1024
INFLATED = 1024 * MiB  # what the bomb expands to
PEAK = 60 * MiB  # the most Python memory one request may take to refuse it (the cap is 20 MiB)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A gigabyte of zeros as one gzip stream, never held inflated: a mebibyte compressed and
    flushed in full (so the next block needs nothing before it), that block written 1024 times,
    then the end of the stream and its trailer."""
    zeros, mebibytes = bytes(MiB), INFLATED // MiB
    first = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16, 9, zlib.Z_RLE)  # gzip header
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_RLE)
    block = raw.compress(zeros) + raw.flush(zlib.Z_FULL_FLUSH)
    crc = functools.reduce(lambda crc, _: zlib.crc32(zeros, crc), range(mebibytes), 0)
    body = (first.compress(zeros) + first.flush(zlib.Z_FULL_FLUSH) + block * (mebibytes - 1)
            + raw.flush() + struct.pack("<II", crc, INFLATED % 2**32))  # fmt: skip
    assert len(body) < 2 * MiB  # over 500 to 1
    return body


def peak_while(request) -> tuple[int, BaseException | None]:
    """Peak traced memory while `request()` runs, and what it raised."""
    tracemalloc.start()
    try:
        request()
        raised = None
    except Exception as exc:  # handed back for the test to look at
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


def assert_refused_at_the_cap(raised: BaseException | None, peak: int) -> None:
    assert isinstance(raised, HttpError), raised
    assert "over the 20971520-byte cap" in str(raised)
    assert peak < PEAK, f"peak {peak / MiB:.0f} MiB"


@respx.mock
def test_case_43_a_gzip_bomb_in_one_chunk_is_refused_with_memory_bounded(bomb):
    # An iterator, not bytes: respx would read (and so inflate) a bytes body itself.
    route = respx.get(URL).mock(
        return_value=httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=iter([bomb]))
    )
    with HttpClient() as http:
        peak, raised = peak_while(lambda: http.get(URL))
    assert_refused_at_the_cap(raised, peak)
    assert route.call_count == 1  # not retried


@pytest.fixture
def bomb_server(bomb: bytes) -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 that sends the bomb as gzip; the list gets each Accept-Encoding."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            asked.append(self.headers.get("Accept-Encoding", ""))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(bomb)))
            self.end_headers()
            try:
                self.wfile.write(bomb)
            except OSError:  # the client hung up at the cap: expected
                return

        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api/v1/timelines/tag/CoPro16", asked
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_case_43_a_gzip_bomb_from_a_server_is_refused_with_memory_bounded(bomb_server):
    url, asked = bomb_server
    with HttpClient() as http:
        peak, raised = peak_while(lambda: http.get(url))
    assert_refused_at_the_cap(raised, peak)
    assert asked == ["gzip, deflate"]  # never br or zstd, which it could not read in steps


@respx.mock
def test_an_unknown_content_encoding_is_one_clear_error_not_retried():
    route = respx.get(URL).mock(
        return_value=httpx.Response(200, headers={"Content-Encoding": "br"}, content=b"\x1b\x00")
    )
    with pytest.raises(HttpError) as info, HttpClient() as http:
        http.get(URL)
    assert str(info.value) == (
        f"GET {URL} failed: response is compressed as 'br', which was not asked for "
        "(only gzip, deflate can be read)"
    )
    assert route.call_count == 1


@respx.mock
def test_a_corrupt_gzip_body_is_one_clear_error():
    respx.get(URL).mock(
        return_value=httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, content=iter([b"nonsense"])
        )
    )
    with pytest.raises(HttpError, match=r"failed: response body could not be decompressed \("):
        HttpClient().get(URL)


def raw_deflate(data: bytes) -> bytes:
    squeeze = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)  # no zlib wrapper
    return squeeze.compress(data) + squeeze.flush()


BODY = b'{"ok": true, "text": "' + b"caf\xc3\xa9 " * 50_000 + b'"}'  # 300 kB: several steps
ENCODED = {  # Content-Encoding -> the body as sent
    "identity": BODY,
    "gzip": gzip.compress(BODY),
    "x-gzip": gzip.compress(BODY),
    "deflate": zlib.compress(BODY),
    "deflate (raw)": raw_deflate(BODY),  # what some servers send as "deflate"
    "deflate, gzip": gzip.compress(zlib.compress(BODY)),  # applied in that order
}


@pytest.mark.parametrize("coding", ENCODED, ids=ENCODED.keys())
@respx.mock
def test_every_encoding_it_asks_for_is_read_whole(coding):
    header = coding.removesuffix(" (raw)")
    route = respx.get(URL).mock(
        return_value=httpx.Response(
            200, headers={"Content-Encoding": header}, content=ENCODED[coding]
        )
    )
    resp = HttpClient().get(URL)
    assert resp.content == BODY and resp.json()["ok"] is True
    assert route.calls.last.request.headers["accept-encoding"] == "gzip, deflate"
