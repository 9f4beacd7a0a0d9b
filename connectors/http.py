"""One HTTP layer for every live connector: timeouts, a deadline, a size cap, retries, rate limits.

Public API (stable: the Mastodon, Bluesky, X and feed connectors build on it)::

    http = HttpClient(sleep=..., clock=..., user_agent=user_agent(version))
    http = HttpClient(httpx.Client(...))     # or around a client made elsewhere
    mine = http.retrying(settings.retry)     # a source's retries: the same connections and waits
    resp = http.get(url, params={...}, headers={"Authorization": ...}, accept=(404,))
    resp.status, resp.headers, resp.content, resp.text, resp.json(), resp.links  # {"next": url}
    resp = http.post(url, json={...})
    http.waits                               # rate-limit waits so far: read it before/after a page
    http, owned = as_http_client(context_http, clock=..., sleep=...)  # accept HttpClient/httpx/None

The pipeline makes one HttpClient per run, naming the tool's version in its user agent, and lends
it to every live connector; each uses it with its own source's retry settings (`retrying`).
Sources are collected in threads at once, so a client and its views are safe to share between
threads: httpx's connection pool is, `waits` is counted under a lock, and the rate-limit windows
are one locked table every view reads, so a host's used-up window holds every thread calling it.

`request()` returns 2xx and 304 responses, and any status listed in `accept`. Anything else
raises `HttpError` (a ConnectorError with `.status`, None for network failures, `.url` with
secrets masked, and `.response`) once retrying is over. Retried: connection errors, timeouts, 5xx
and 429 (waiting as the rate-limit headers say, capped at `max_wait`; otherwise capped exponential
backoff with jitter), at most `max_attempts` tries. Not retried: 401, 403, 422 and every other
4xx, a body over `max_bytes` (counted after decompression, while streaming) and a body still
arriving at `deadline`. Bodies are asked for as gzip or deflate only and decompressed here in
bounded steps, so a compression bomb stops at the cap with memory bounded near it.
Tokens belong in `headers=`; headers are never logged and token-like query values are masked.
`sleep(seconds)` and `clock() -> epoch seconds` are injectable so tests never wait. Every wait goes
through `sleep`, and an exception it raises ends the request at once, unchanged: the pipeline
passes `StopFlag.sleep`, so a stop request ends a retry or rate-limit wait with `StopRequested`.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from connectors.base import ConnectorError, parse_time
from connectors.settings import Retry

__all__ = [
    "USER_AGENT",
    "HttpClient",
    "HttpError",
    "Response",
    "as_http_client",
    "safe_url",
    "user_agent",
]

log = logging.getLogger(__name__)


def user_agent(version: str) -> str:
    """What every request says it is: the tool and its version, so instance admins can tell what
    is calling (no URL until one is public)."""
    return f"hashtag-aggregator/{version} (event hashtag collector)"


USER_AGENT = user_agent("unknown")  # a client not told its version (the pipeline tells its own)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MiB = 1024 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))
RESET_HEADERS = ("retry-after", "x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset")
REMAINING_HEADERS = ("x-ratelimit-remaining", "x-rate-limit-remaining", "ratelimit-remaining")
SECRET_KEY = re.compile(r"token|key|secret|pass|auth|sig|session|jwt|code|cred", re.I)
LINK_RE = re.compile(r'<([^<>]*)>\s*((?:;\s*[\w*-]+\s*=\s*(?:"[^"]*"|[^;,\s]+)\s*)*)')
REL_RE = re.compile(r'rel\s*=\s*(?:"([^"]*)"|([^;,\s]+))', re.I)
MAX_SANE_RESET = 86_400.0  # a reset further away than a day is a broken header, not a plan
# Only what zlib decodes in bounded steps: httpx would also ask for br/zstd when those are installed.
ACCEPT_ENCODING = "gzip, deflate"
WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}
DECODE_STEP = 256 * 1024  # decompressed bytes per step, however far one network chunk expands
Number = TypeVar("Number", int, float)


class HttpError(ConnectorError):
    """A request failed for good. The message is one line naming the endpoint and status."""

    def __init__(
        self, message: str, *, url: str, status: int | None = None, response: Response | None = None
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.response = response


@dataclass
class Response:
    """A fully read response: status, headers, body bytes (decompressed) and the final URL."""

    status: int
    headers: httpx.Headers
    content: bytes
    url: str

    @property
    def text(self) -> str:
        charset = self.headers.get("content-type", "").partition("charset=")[2].strip('"; ')
        return self.content.decode(charset or "utf-8", errors="replace")

    def json(self) -> Any:
        """Parsed JSON body. :raises HttpError: when the body is not JSON."""
        try:
            return json.loads(self.content)
        except (ValueError, UnicodeDecodeError):
            raise HttpError(
                f"{safe_url(self.url)} answered HTTP {self.status} with a body that is not JSON",
                url=safe_url(self.url),
                status=self.status,
            ) from None

    @property
    def links(self) -> dict[str, str]:
        """The Link header as {rel: url}, e.g. Mastodon's {"next": ..., "prev": ...}."""
        out: dict[str, str] = {}
        for match in LINK_RE.finditer(self.headers.get("link", "")):
            rel = REL_RE.search(match.group(2))
            if rel:
                for name in (rel.group(1) or rel.group(2)).split():
                    out.setdefault(name.lower(), match.group(1))
        return out


def safe_url(url: str | httpx.URL) -> str:
    """The URL without user info and with token-like query values replaced by '***'."""
    parts = urlsplit(str(url))
    netloc = parts.netloc.rpartition("@")[2]
    query = [(k, "***" if SECRET_KEY.search(k) else v) for k, v in parse_qsl(parts.query, True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*[]"), ""))


class _MaskUrls(logging.Filter):
    """httpx logs every request URL at INFO; mask token-like query values there too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(safe_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


if not any(isinstance(f, _MaskUrls) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_MaskUrls())


class _Fatal(Exception):
    """Raised inside one attempt for a failure that retrying cannot fix."""


class _Windows:
    """Each host's used-up rate-limit window: the epoch before which it must not be called, as a
    response said. One table for a client and all its views, read and written under a lock by
    the threads collecting at once: every thread calling a host waits out its window, and the
    first to wake closes it (unless a later response opened a new one meanwhile)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def open(self, host: str, until: float) -> None:
        with self._lock:  # the latest response knows best
            self._until[host] = until

    def until(self, host: str) -> float | None:
        with self._lock:
            return self._until.get(host)

    def close(self, host: str, until: float) -> None:
        """The window ending at `until` is waited out: forget it, unless a newer one replaced it."""
        with self._lock:
            if self._until.get(host) == until:
                del self._until[host]


class HttpClient:
    """An httpx.Client with the project's timeouts, size cap, deadline, retries and rate limits."""

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        max_bytes: int = 20 * MiB,
        deadline: float = 120.0,
        max_attempts: int = 5,
        backoff: float = 2.0,
        max_backoff: float = 120.0,
        max_wait: float = 900.0,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self._owns_client = client is None
        self.client = client or httpx.Client(timeout=DEFAULT_TIMEOUT, follow_redirects=True)
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        self.sleep = sleep or time.sleep
        self.clock = clock or time.time
        self.user_agent = user_agent
        self.waits = 0  # counted under _lock: threads may share a client
        self._lock = threading.Lock()
        self._windows = _Windows()

    def retrying(self, retry: Retry) -> HttpClient:
        """This client with a source's retry settings (those it leaves unset stay this client's):
        the same connections, user agent, sleep and clock, and the same rate-limit windows, so a
        host's used-up window holds for every source calling it. It counts its own `waits`, and
        closing it closes nothing."""
        view = HttpClient(
            self.client,
            max_bytes=self.max_bytes,
            deadline=self.deadline,
            max_attempts=_given(retry.max_attempts, self.max_attempts),
            backoff=_given(retry.backoff_seconds, self.backoff),
            max_backoff=self.max_backoff,
            max_wait=_given(retry.max_wait_seconds, self.max_wait),
            sleep=self.sleep,
            clock=self.clock,
            user_agent=self.user_agent,
        )
        view._windows = self._windows
        return view

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        accept: Collection[int] = (),
    ) -> Response:
        """Send with retries; return 2xx/304/`accept` responses. :raises HttpError: otherwise."""
        request = self.client.build_request(
            method,
            url,
            params=params,
            json=json,
            headers={
                "User-Agent": self.user_agent,
                "Accept-Encoding": ACCEPT_ENCODING,
                **(headers or {}),
            },
        )
        where, shown = f"{method} {safe_url(request.url)}", safe_url(request.url)
        for attempt in range(1, self.max_attempts + 1):
            self._respect_window(request.url.host, where)
            resp: Response | None = None
            try:
                resp = self._send(request)
            except _Fatal as exc:
                raise HttpError(f"{where} failed: {exc}", url=shown) from None
            except httpx.TransportError as exc:  # connect/read errors and timeouts
                failure = _describe(exc)
            else:
                if resp.status < 300 or resp.status == 304 or resp.status in accept:
                    self._note_remaining(request.url.host, resp)
                    return resp
                failure = f"HTTP {resp.status}"
                if resp.status not in RETRY_STATUSES:
                    raise HttpError(f"{where} failed: {failure}", url=shown, status=resp.status,
                                    response=resp)  # fmt: skip
            if attempt == self.max_attempts:
                raise HttpError(
                    f"{where} failed: {failure} after {_attempts(attempt)}",
                    url=shown,
                    status=resp.status if resp else None,
                    response=resp,
                )
            self._wait_to_retry(resp, where, failure, attempt)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _send(self, request: httpx.Request) -> Response:
        """One attempt, read while streaming so the size cap and the deadline hold mid-body."""
        started = self.clock()
        resp = self.client.send(request, stream=True, follow_redirects=True)
        try:
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise _Fatal(f"response of {int(declared)} bytes is over the {self.max_bytes} cap")
            content = self._read(resp, started)
        finally:
            resp.close()
        return Response(resp.status_code, resp.headers, content, str(resp.url))

    def _read(self, resp: httpx.Response, started: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        body = _decoded(self._until_deadline(resp.iter_raw(), started), resp.headers)
        try:
            for chunk in body:  # decompressed: the cap counts what we would hold
                size += len(chunk)
                if size > self.max_bytes:
                    raise _Fatal(f"response is over the {self.max_bytes}-byte cap (aborted)")
                chunks.append(chunk)
        except zlib.error as exc:
            raise _Fatal(f"response body could not be decompressed ({exc})") from None
        return b"".join(chunks)

    def _until_deadline(self, raw: Iterable[bytes], started: float) -> Iterator[bytes]:
        for chunk in raw:
            if self.clock() - started > self.deadline:
                raise _Fatal(f"response still arriving after {self.deadline:g}s (aborted)")
            yield chunk

    def _wait_to_retry(self, resp: Response | None, where: str, why: str, attempt: int) -> None:
        told = self._reset_wait(resp.headers) if resp is not None else None
        if resp is not None and resp.status == 429:
            self._count_wait()
        self._pause(told if told is not None else self._backoff(attempt), where, why, attempt)

    def _backoff(self, attempt: int) -> float:
        # Equal jitter: never less than half the step, so a retry is never a tight loop.
        step = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)

    def _reset_wait(self, headers: httpx.Headers) -> float | None:
        """Seconds to wait as the first usable rate-limit header says, capped; None if none is."""
        now = self.clock()
        for name in RESET_HEADERS:
            value = headers.get(name)
            if value is None:
                continue
            seconds = _seconds_until(value.strip(), now, delta_ok=name in ("retry-after",))
            if seconds is not None and 0 < seconds <= MAX_SANE_RESET:
                return min(seconds + 1.0, self.max_wait)  # +1s: resets are rounded down
        return None

    def _note_remaining(self, host: str, resp: Response) -> None:
        for name in REMAINING_HEADERS:
            if resp.headers.get(name, "").strip() == "0":
                wait = self._reset_wait(resp.headers)
                if wait is not None:
                    self._windows.open(host, self.clock() + wait)
                return

    def _respect_window(self, host: str, where: str) -> None:
        until = self._windows.until(host)
        if until is None:
            return
        wait = until - self.clock()
        if wait > 0:
            self._count_wait()
            self._pause(min(wait, self.max_wait), where, "rate limit window used up", 0)
        self._windows.close(host, until)

    def _count_wait(self) -> None:
        with self._lock:
            self.waits += 1

    def _pause(self, seconds: float, where: str, why: str, attempt: int) -> None:
        tries = f" (attempt {attempt}/{self.max_attempts})" if attempt else ""
        # INFO: a wait that ends well is no news under cron; --verbose and --log-file show it,
        # and a request that fails for good is reported once by the run's summary line.
        log.info("%s: %s; waiting %.0fs%s", where, why, seconds, tries)
        self.sleep(seconds)


def _decoded(raw: Iterator[bytes], headers: httpx.Headers) -> Iterator[bytes]:
    """The body undone of its Content-Encoding(s), last applied first.

    :raises _Fatal: for an encoding we cannot decode (we never asked for it).
    """
    body = raw
    codings = [c.strip().lower() for c in headers.get("content-encoding", "").split(",")]
    for coding in reversed([c for c in codings if c not in ("", "identity")]):
        if coding not in WBITS:
            raise _Fatal(
                f"response is compressed as {coding!r}, which was not asked for "
                f"(only {ACCEPT_ENCODING} can be read)"
            )
        body = _inflate(body, coding)
    return body


def _inflate(compressed: Iterator[bytes], coding: str) -> Iterator[bytes]:
    """Decompress in steps of at most DECODE_STEP bytes, so a small chunk that expands to a
    gigabyte is read a step at a time and the size cap stops it (httpx inflates a chunk whole).
    Like browsers, "deflate" is taken as zlib-wrapped, or raw when its first bytes are not.

    :raises zlib.error: when the body is not what its Content-Encoding says.
    """
    inflater = zlib.decompressobj(WBITS[coding])
    first = True
    for chunk in compressed:
        data = chunk
        while data:
            try:
                out = inflater.decompress(data, DECODE_STEP)
            except zlib.error:
                if not (first and coding == "deflate"):
                    raise
                inflater, first = zlib.decompressobj(-zlib.MAX_WBITS), False
                continue
            first, data = False, inflater.unconsumed_tail
            yield out
    yield inflater.flush()  # the few bytes a last full step may hold back


def _given(value: Number | None, default: Number) -> Number:
    return default if value is None else value


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _seconds_until(value: str, now: float, *, delta_ok: bool) -> float | None:
    """A reset header value -> seconds from `now`. Handles delta seconds, epoch, ISO, HTTP date."""
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        # Retry-After is a delta; the *-reset headers here are epochs, but small values are deltas.
        return number if delta_ok or number < 1e9 else number - now
    for parse in (parse_time, parsedate_to_datetime):
        try:
            when = parse(value)
        except (ValueError, TypeError, IndexError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - datetime.fromtimestamp(now, UTC)).total_seconds()
    return None


def _describe(exc: httpx.TransportError) -> str:
    """A short, secret-free name for a network failure (httpx messages can carry URLs)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"connection failed ({type(exc).__name__})"


def as_http_client(
    http: HttpClient | httpx.Client | None,
    *,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    **knobs: Any,
) -> tuple[HttpClient, bool]:
    """An HttpClient for `http` (an HttpClient as it is, an httpx.Client wrapped, None: a new one),
    and whether it was made here (and so must be closed). `knobs` (HttpClient's keyword arguments)
    set up a client made or wrapped here; an HttpClient passed in keeps its own."""
    if isinstance(http, HttpClient):
        return http, False
    if isinstance(http, httpx.Client):
        return HttpClient(http, clock=clock, sleep=sleep, **knobs), False
    return HttpClient(clock=clock, sleep=sleep, **knobs), True
