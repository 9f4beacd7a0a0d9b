"""connectors/http.py: retries, rate-limit waits, size cap, deadline, timeouts, no secrets in logs."""

from __future__ import annotations

import logging
import socket
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
import respx

from connectors.base import ConnectorError
from connectors.http import USER_AGENT, HttpClient, HttpError, Response, as_http_client, safe_url
from tests.helpers import FakeClock, client

URL = "https://mastodon.example/api/v1/timelines/tag/CoPro16"
NOW = 1_800_000_000.0  # 2027-01-15, a fixed "now" for reset arithmetic


@pytest.fixture
def fake() -> FakeClock:
    return FakeClock(NOW)


def make_client(fake: FakeClock, **kwargs) -> HttpClient:
    return HttpClient(client(), sleep=fake.sleep, clock=fake.clock, **kwargs)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


RESET_FORMATS = {
    "mastodon-iso": {"X-RateLimit-Reset": iso(NOW + 120)},
    "x-epoch": {"x-rate-limit-reset": str(int(NOW + 120))},
    "bluesky-epoch": {"RateLimit-Reset": str(int(NOW + 120))},
    "retry-after-seconds": {"Retry-After": "120"},
    "retry-after-http-date": {
        "Retry-After": format_datetime(datetime.fromtimestamp(NOW + 120, UTC), usegmt=True)
    },
}


@pytest.mark.parametrize("headers", RESET_FORMATS.values(), ids=RESET_FORMATS.keys())
@respx.mock
def test_case_01_429_waits_until_each_reset_format_then_retries(fake, headers, caplog):
    route = respx.get(URL).mock(
        side_effect=[httpx.Response(429, headers=headers), httpx.Response(200, json=[])]
    )
    http = make_client(fake)
    with caplog.at_level(logging.INFO, logger="connectors.http"):
        resp = http.get(URL)
    assert resp.status == 200 and route.call_count == 2
    assert len(fake.slept) == 1 and 120 <= fake.slept[0] <= 122  # the reset, plus a 1 s margin
    assert http.waits == 1
    assert "HTTP 429; waiting 121s" in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-RateLimit-Reset": iso(NOW - 3600)},  # in the past
        {"x-rate-limit-reset": str(int(NOW + 40 * 365 * 86400))},  # decades away
        {"RateLimit-Reset": "not-a-time"},
        {"Retry-After": "0"},
    ],
    ids=["no-headers", "past", "decades", "garbage", "zero"],
)
@respx.mock
def test_case_02_429_without_a_usable_reset_backs_off_capped_never_tight(fake, headers):
    respx.get(URL).mock(
        side_effect=[httpx.Response(429, headers=headers)] * 3 + [httpx.Response(200, json={})]
    )
    http = make_client(fake, backoff=2.0, max_backoff=5.0)
    assert http.get(URL).status == 200
    # steps 2, 4, 5 (capped): each wait is at least half its step and never above the cap
    assert [1 <= fake.slept[0] <= 2, 2 <= fake.slept[1] <= 4, 2.5 <= fake.slept[2] <= 5] == [
        True
    ] * 3
    assert http.waits == 3


@respx.mock
def test_case_01_rate_limit_wait_is_capped_at_max_wait(fake):
    respx.get(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"X-RateLimit-Reset": iso(NOW + 3 * 3600)}),
            httpx.Response(200, json=[]),
        ]
    )
    make_client(fake, max_wait=900).get(URL)
    assert fake.slept == [900]


@respx.mock
def test_case_01_endless_429_gives_up_after_max_attempts(fake):
    route = respx.get(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "60"}))
    with pytest.raises(HttpError) as info:
        make_client(fake, max_attempts=4).get(URL)
    assert route.call_count == 4 and len(fake.slept) == 3
    assert info.value.status == 429
    assert str(info.value) == f"GET {URL} failed: HTTP 429 after 4 attempts"


@respx.mock
def test_remaining_zero_waits_for_the_window_before_the_next_request(fake):
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": iso(NOW + 30)}
    respx.get(URL).mock(return_value=httpx.Response(200, json=[], headers=headers))
    http = make_client(fake)
    http.get(URL)
    assert fake.slept == []
    http.get(URL)
    assert len(fake.slept) == 1 and 30 <= fake.slept[0] <= 31 and http.waits == 1


@respx.mock
def test_a_used_up_window_on_one_host_does_not_delay_another(fake):
    headers = {"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW + 30))}
    respx.get(URL).mock(return_value=httpx.Response(200, headers=headers))
    respx.get("https://bsky.example/xrpc/x").mock(return_value=httpx.Response(200))
    http = make_client(fake)
    http.get(URL)
    http.get("https://bsky.example/xrpc/x")
    assert fake.slept == []


@respx.mock
def test_redirects_are_followed_even_on_a_plain_client(fake):
    respx.get(URL).mock(return_value=httpx.Response(301, headers={"Location": URL + "2"}))
    respx.get(URL + "2").mock(return_value=httpx.Response(200, json=[]))
    resp = make_client(fake).get(URL)
    assert resp.status == 200 and resp.url == URL + "2"


@respx.mock
def test_case_03_5xx_then_200_succeeds(fake):
    respx.get(URL).mock(
        side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200, json=[1])]
    )
    http = make_client(fake)
    assert http.get(URL).json() == [1]
    assert len(fake.slept) == 2 and http.waits == 0  # backoff for errors is not a rate-limit wait


@respx.mock
def test_case_03_5xx_past_the_cap_is_one_clear_error(fake):
    route = respx.get(URL).mock(return_value=httpx.Response(503))
    with pytest.raises(HttpError) as info:
        make_client(fake, max_attempts=5).get(URL, params={"limit": 40})
    assert route.call_count == 5
    assert str(info.value) == f"GET {URL}?limit=40 failed: HTTP 503 after 5 attempts"
    assert isinstance(info.value, ConnectorError) and info.value.status == 503


@respx.mock
def test_503_retry_after_is_honoured(fake):
    respx.get(URL).mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(200)]
    )
    make_client(fake).get(URL)
    assert fake.slept == [8.0]


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("[Errno 104] Connection reset by peer"),
        httpx.ConnectError("[Errno -2] Name or service not known"),  # DNS failure
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=["reset", "dns", "read-timeout", "connect-timeout", "disconnect"],
)
@respx.mock
def test_case_04_network_errors_are_retried(fake, error):
    route = respx.get(URL).mock(side_effect=[error, error, httpx.Response(200, json=[])])
    assert make_client(fake).get(URL).status == 200
    assert route.call_count == 3 and len(fake.slept) == 2


@respx.mock
def test_case_04_network_errors_past_the_cap_raise(fake):
    respx.get(URL).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(HttpError) as info:
        make_client(fake, max_attempts=3).get(URL)
    assert str(info.value) == f"GET {URL} failed: timed out (ReadTimeout) after 3 attempts"
    assert info.value.status is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
@respx.mock
def test_case_05_client_errors_are_not_retried(fake, status):
    route = respx.get(URL).mock(return_value=httpx.Response(status, json={"error": "no"}))
    with pytest.raises(HttpError) as info:
        make_client(fake).get(URL)
    assert route.call_count == 1 and fake.slept == []
    assert info.value.status == status and info.value.response.json() == {"error": "no"}
    assert str(info.value) == f"GET {URL} failed: HTTP {status}"


@respx.mock
def test_accepted_statuses_and_304_are_returned(fake):
    respx.get(URL).mock(side_effect=[httpx.Response(404, json={}), httpx.Response(304)])
    http = make_client(fake)
    assert http.get(URL, accept=(404,)).status == 404
    assert http.get(URL).status == 304


@respx.mock
def test_sends_user_agent_and_caller_headers(fake):
    route = respx.get(URL).mock(return_value=httpx.Response(200))
    make_client(fake).get(URL, headers={"Authorization": "Bearer t"})
    sent = route.calls.last.request.headers
    assert sent["user-agent"] == USER_AGENT and USER_AGENT.startswith("hashtag-aggregator/")
    assert sent["authorization"] == "Bearer t"


@respx.mock
def test_case_36_tokens_never_reach_logs_or_errors(fake, caplog):
    respx.get(URL).mock(return_value=httpx.Response(503))
    http = make_client(fake, max_attempts=3)
    with caplog.at_level(logging.DEBUG), pytest.raises(HttpError) as info:
        http.get(
            URL,
            params={"access_token": "SECRET-QUERY", "limit": 40},
            headers={"Authorization": "Bearer SECRET-HEADER"},
        )
    text = caplog.text + str(info.value) + info.value.url
    assert "SECRET" not in text
    assert "access_token=***" in str(info.value) and "limit=40" in str(info.value)


def test_safe_url_drops_userinfo_and_masks_token_params():
    url = "https://me:pw@h.example/x?api_key=k1&jwt=k2&max_id=9"
    assert safe_url(url) == "https://h.example/x?api_key=***&jwt=***&max_id=9"


def chunks(size: int, count: int | None) -> Iterator[bytes]:
    """`count` chunks of `size` bytes, or an endless stream when count is None."""
    n = 0
    while count is None or n < count:
        n += 1
        yield b"x" * size


@respx.mock
def test_case_14_declared_length_over_the_cap_is_refused_before_reading(fake):
    route = respx.get(URL).mock(
        return_value=httpx.Response(200, headers={"Content-Length": str(50 * 1024 * 1024)})
    )
    with pytest.raises(HttpError, match="over the 1048576 cap"):
        make_client(fake, max_bytes=1024 * 1024).get(URL)
    assert route.call_count == 1  # not retried


@respx.mock
def test_case_14_endless_chunked_body_is_aborted_at_the_cap(fake):
    respx.get(URL).mock(return_value=httpx.Response(200, content=chunks(64 * 1024, None)))
    with pytest.raises(HttpError, match="over the 1048576-byte cap"):
        make_client(fake, max_bytes=1024 * 1024).get(URL)


@respx.mock
def test_case_14_gzip_bomb_is_aborted_on_decompressed_size(fake):
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    bomb = b"".join(squeeze.compress(b"\0" * 1024 * 1024) for _ in range(64)) + squeeze.flush()
    assert len(bomb) < 100 * 1024  # 64 MiB of zeros in under 100 KiB on the wire
    wire = (bomb[i : i + 4096] for i in range(0, len(bomb), 4096))
    respx.get(URL).mock(
        return_value=httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=wire)
    )
    with pytest.raises(HttpError, match="cap"):
        make_client(fake, max_bytes=1024 * 1024).get(URL)


@respx.mock
def test_body_under_the_cap_is_decompressed_whole(fake):
    body = zlib.compress(b'{"ok": true}')
    respx.get(URL).mock(
        return_value=httpx.Response(200, headers={"Content-Encoding": "deflate"}, content=body)
    )
    assert make_client(fake).get(URL).json() == {"ok": True}


@respx.mock
def test_case_14_slow_drip_is_aborted_at_the_deadline(fake):
    def drip() -> Iterator[bytes]:
        while True:  # one byte every 10 s: each read is quick enough, the whole never ends
            fake.now += 10
            yield b"x"

    route = respx.get(URL).mock(return_value=httpx.Response(200, content=drip()))
    with pytest.raises(HttpError, match=r"still arriving after 60s"):
        make_client(fake, deadline=60).get(URL)
    assert route.call_count == 1


def test_response_links_parse_mastodon_link_header():
    link = (
        '<https://mastodon.example/api/v1/endpoint?max_id=7163058>; rel="next", '
        '<https://mastodon.example/api/v1/endpoint?min_id=7275607>; rel="prev"'
    )
    resp = Response(200, httpx.Headers({"Link": link}), b"[]", URL)
    assert resp.links == {
        "next": "https://mastodon.example/api/v1/endpoint?max_id=7163058",
        "prev": "https://mastodon.example/api/v1/endpoint?min_id=7275607",
    }
    assert Response(200, httpx.Headers(), b"", URL).links == {}


def test_non_json_body_is_a_connector_error():
    with pytest.raises(ConnectorError, match="not JSON"):
        Response(200, httpx.Headers(), b"<html>", URL).json()


def test_as_http_client_wraps_or_reuses():
    mine = HttpClient(client())
    assert as_http_client(mine) == (mine, False)
    wrapped, owned = as_http_client(client())
    assert isinstance(wrapped, HttpClient) and not owned
    made, owned = as_http_client(None)
    assert owned
    made.close()
    mine.client.close()
    wrapped.client.close()


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/api"
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self.stop.is_set():
            try:
                self.held.append(self.listener.accept()[0])
            except TimeoutError:
                continue

    def hung_up(self) -> list[bool]:
        """For each connection made, whether the client has closed it (its request read to the
        end): a client still waiting for an answer keeps it open."""
        closed = []
        for conn in self.held:
            conn.settimeout(1.0)
            try:
                while conn.recv(4096):
                    pass
                closed.append(True)
            except TimeoutError:
                closed.append(False)
        return closed

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.listener.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_case_04_a_server_that_never_answers_times_out_and_is_retried(silent_server, fake):
    timeout = httpx.Timeout(0.2, connect=0.2)
    with client(timeout=timeout) as patient:
        http = HttpClient(patient, sleep=fake.sleep, clock=fake.clock, max_attempts=2)
        with pytest.raises(HttpError, match=r"timed out .* after 2 attempts"):
            http.get(silent_server.url)
        assert silent_server.hung_up() == [True, True]  # each attempt gave up its connection
    assert len(fake.slept) == 1
