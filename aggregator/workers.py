"""Pure work spread over the cores: chunks of items mapped in worker processes, the results in the
order given, and an item that ends its worker (a crash, a kill, running out of memory) costing only
itself.

Workers are spawned, never forked: a fork copies the locks other threads hold (the scheduler's,
logging's), and spawning behaves alike on every platform. The work is a module-level function, so a
spawned worker can import it. Workers ignore SIGINT: Ctrl-C stops the parent, which ends them.

Core layer: standard library only.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Generic, TypeVar

from aggregator.errors import AggregatorError

__all__ = ["AHEAD", "Died", "map_chunks"]

T = TypeVar("T")
R = TypeVar("R")
AHEAD = 2  # chunks in flight per worker: one running, one waiting, so no worker idles
DIED = "its worker process ended abruptly (a crash, a kill or out of memory)"


@dataclass(frozen=True)
class Died(Generic[T]):
    """An item whose work ended its worker process, in place of its result."""

    item: T
    why: str = DIED


def _ignore_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool(workers: int) -> ProcessPoolExecutor:
    spawn = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=spawn, initializer=_ignore_interrupt)


def map_chunks(
    work: Callable[[list[T]], list[R]], chunks: Iterable[list[T]], workers: int
) -> Generator[tuple[list[T], list[R | Died[T]]], None, None]:
    """Each chunk with `work(chunk)` (one result per item, in order), computed in `workers`
    processes with `AHEAD` chunks each in flight, so chunks are read only as the work needs them.

    When a worker dies, every chunk not yet done is redone one item at a time in a fresh process,
    and an item that ends that process too comes back as `Died`. An exception `work` raises is
    raised here: `work` deals with the items it can survive. Closing the generator ends the
    workers (after the chunks they are on).
    """
    if workers < 1:
        raise ValueError(f"map_chunks needs at least one worker, not {workers}")
    source = iter(chunks)
    pool: ProcessPoolExecutor | None = None
    pending: deque[tuple[list[T], Future[list[R]]]] = deque()
    try:
        while True:
            while len(pending) < workers * AHEAD and (chunk := next(source, None)) is not None:
                pool = pool or _pool(workers)
                pending.append((chunk, _submit(pool, work, chunk)))
            if not pending:
                return
            chunk, future = pending.popleft()
            try:
                results: list[R | Died[T]] = list(future.result())
            except BrokenProcessPool:
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
                pool = None
                lost = [(chunk, future), *pending]
                pending.clear()
                yield from _salvage(work, lost)
                continue
            yield chunk, results
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _submit(pool: ProcessPoolExecutor, work: Callable[[list[T]], R], chunk: list[T]) -> Future[R]:
    """`work(chunk)` in the pool; a pool that broke already gives a future that says so."""
    try:
        return pool.submit(work, chunk)
    except BrokenProcessPool as exc:
        broken: Future[R] = Future()
        broken.set_exception(exc)
        return broken


def _salvage(
    work: Callable[[list[T]], list[R]], lost: Sequence[tuple[list[T], Future[list[R]]]]
) -> Iterator[tuple[list[T], list[R | Died[T]]]]:
    """The chunks a dead pool held: a finished one's results as they were, the others redone."""
    for chunk, future in lost:
        results: list[R | Died[T]]
        if future.done() and not future.cancelled() and future.exception() is None:
            results = list(future.result())
        else:
            redone = _one_by_one(work, chunk)
            results = list(redone)
        yield chunk, results


def _one_by_one(work: Callable[[list[T]], list[R]], chunk: list[T]) -> Iterator[R | Died[T]]:
    """Each item's result, alone in one worker; an item that ends its worker is `Died`, once a
    fresh worker is seen to live without it."""
    pool = _pool(1)
    try:
        for item in chunk:
            try:
                result: R | Died[T] = pool.submit(work, [item]).result()[0]
            except BrokenProcessPool:
                pool.shutdown(cancel_futures=True)
                pool, result = _living(), Died(item)
            yield result
    finally:
        pool.shutdown(cancel_futures=True)


def _nothing() -> None:
    """A worker's first task when its predecessor died: proof that a worker can live."""


def _living() -> ProcessPoolExecutor:
    """A fresh one-worker pool that has run a task: when even that worker dies, no item is to
    blame, and going on would only blame them all."""
    pool = _pool(1)
    try:
        pool.submit(_nothing).result()
    except BrokenProcessPool:
        pool.shutdown(cancel_futures=True)
        raise AggregatorError(
            "worker processes end as soon as they start: a script that starts them (such as "
            'pipeline.analyse) needs `if __name__ == "__main__":` around its work, or workers=1'
        ) from None
    return pool
