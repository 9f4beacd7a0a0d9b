"""A clean stop. `StopFlag` is set by SIGINT/SIGTERM; long loops check it between pages and stop
cleanly there, and waits (retry backoff, rate limits) sleep through it, so a stop ends them at once.

Core layer: standard library only. Every layer may take a StopFlag (or any `() -> bool`) and pass
its `sleep` on as the injectable sleep of what waits.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["StopFlag", "StopRequested"]


class StopRequested(Exception):
    """A stop was requested during a wait: what was waiting gives up at once (not a failure)."""


class StopFlag:
    """A stop request: call it to ask whether to stop; set by `set()` or, inside `signals()`, by
    SIGINT/SIGTERM. A second signal acts as usual (Ctrl-C twice forces the stop).

    `wait` and `sleep` are waits a stop ends at once, from any thread. They block on a bare lock
    that `set()` releases, never blocking itself: a signal handler may run while this same
    thread is inside a wait (a threading.Event could deadlock there on its own lock)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._requested = False
        self._wake = threading.Lock()
        self._wake.acquire()  # held until a stop is requested; then free, so no wait blocks
        self._listeners: list[Callable[[], None]] = []

    def __call__(self) -> bool:
        return self._requested

    def set(self) -> None:
        self._requested = True
        self._free()
        for listener in self._listeners:
            listener()

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`, ending at once if a stop is (or was) requested; whether one was."""
        timeout = min(seconds, threading.TIMEOUT_MAX)
        if not self._requested and seconds > 0 and self._wake.acquire(timeout=timeout):
            self._free()  # the stop stands: every later wait ends at once too
        return self._requested

    def sleep(self, seconds: float) -> None:
        """`time.sleep` that a stop ends. :raises StopRequested: when a stop is requested."""
        if self.wait(seconds):
            raise StopRequested(f"stopped on request during a {seconds:.0f}s wait")

    def _free(self) -> None:
        with contextlib.suppress(RuntimeError):  # already free: a stop was requested before
            self._wake.release()

    def on_stop(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the signal handler) when a stop is requested."""
        self._listeners.append(listener)

    @contextlib.contextmanager
    def signals(self) -> Iterator[StopFlag]:
        """Within the block, SIGINT/SIGTERM set the flag instead of killing the process."""
        if threading.current_thread() is not threading.main_thread():
            yield self  # only the main thread may set signal handlers
            return
        previous = {s: signal.getsignal(s) for s in self.SIGNALS}

        def handler(signum: int, _frame: FrameType | None) -> None:
            for s, old in previous.items():  # the next signal does what it did before
                signal.signal(s, old)
            self.set()

        for s in self.SIGNALS:
            signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, old in previous.items():
                signal.signal(s, old)
