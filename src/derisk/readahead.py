"""Read ahead: an input's reading and preparation run in a worker thread, a few batches ahead of the store.

Reading (NFStream's meter, DuckDB's CSV reader) and preparing a batch (orientation, enrichment) then
overlap with DuckDB inserting the batch before it, and a capture can be metered while the workspace
is still being opened. At most ``depth`` batches wait in between, so memory stays bounded by the
batch size whatever the input size.

The worker never touches the workspace's connection. Errors raised while reading come out of the
consumer's ``next()`` as themselves; :meth:`ReadAhead.close` tells the worker to stop at its next
batch and closes the reader there (a generator can only be closed by the thread that runs it).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Final, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How often a blocked worker or consumer looks up from the queue (seconds): the worker to see a
#: stop request, the consumer to let an interruption (Ctrl-C) through promptly.
_POLL: Final = 0.05

_ITEM, _END, _ERROR = "item", "end", "error"


class ReadAhead(Generic[T]):
    """Iterate ``produce()`` in a daemon thread; use as a context manager (or call :meth:`close`)."""

    def __init__(
        self, produce: Callable[[], Iterator[T]], *, depth: int = 2, name: str = "derisk-read"
    ) -> None:
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._work, args=(produce,), name=name, daemon=True)
        self._thread.start()

    # -- worker side ----------------------------------------------------------------------------
    def _work(self, produce: Callable[[], Iterator[T]]) -> None:
        try:
            items = produce()
            try:
                for item in items:
                    if not self._put(_ITEM, item):
                        return
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # handed to the consumer, which raises it in its own thread
            self._put(_ERROR, exc)
            return
        self._put(_END, None)

    def _put(self, kind: str, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put((kind, value), timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    # -- consumer side --------------------------------------------------------------------------
    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        while True:
            try:
                kind, value = self._queue.get(timeout=_POLL)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._finished = True
                    raise RuntimeError("the reading thread ended without a result") from None
                continue
            if kind == _ITEM:
                return value  # type: ignore[return-value]
            self._finished = True
            if kind == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            raise StopIteration

    def close(self, timeout: float = 2.0) -> None:
        """Stop the worker at its next batch and wait for it to close the reader (up to ``timeout``)."""
        self._finished = True
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.debug("%s still reading after %.0f s; it stops at its next batch", self._thread.name, timeout)

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # After an error or Ctrl-C nobody waits for the reader: the worker may be blocked until its
        # next batch (a meter between flows), and it stops by itself when it gets there.
        self.close(timeout=2.0 if exc_type is None else 0.2)
