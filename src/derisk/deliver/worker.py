"""One thread per sink with a bounded queue: attempts, exponential backoff with jitter, dead letters.

A worker takes alerts from its queue in order. A failed attempt is retried after
``min(max_delay, base_delay * 2**(n-1))`` seconds, scaled by a random factor in [0.5, 1] (so that many
derisk instances behind one receiver do not retry in step), or after the receiver's ``Retry-After``
when that is longer. An alert is dead-lettered after ``max_attempts`` failures, at once when the
receiver refuses it for good, and when :meth:`SinkWorker.stop` runs out of time. Nothing a sink does
blocks the caller or another sink: the caller only puts into the queue, and a full queue dead-letters.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from derisk.deliver.base import DeliveryFailed, Item, Sink, describe
from derisk.deliver.config import RetryPolicy
from derisk.deliver.state import DeadLetters, DeliveredLog

log = logging.getLogger(__name__)

#: A group of written alerts is flushed (one fsync) when the queue is empty, or after this many, or
#: after this many seconds, whichever comes first.
FLUSH_EVERY = 256
FLUSH_SECONDS = 1.0

#: How a sink's dead-letter record shows what would have been sent (None: the alert is enough).
PayloadOf = Callable[[Item], dict[str, Any] | None]


def backoff(attempt: int, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped, jittered."""
    ceiling = min(policy.max_delay, policy.base_delay * (2 ** (attempt - 1)))
    return float(ceiling * (0.5 + 0.5 * rand()))


class SinkWorker:
    def __init__(
        self,
        sink: Sink,
        policy: RetryPolicy,
        delivered: DeliveredLog,
        dead: DeadLetters,
        queue_size: int,
        payload_of: PayloadOf | None = None,
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.policy = policy
        self.delivered_log = delivered
        self.dead = dead
        self.payload_of = payload_of
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._pending: dict[str, str] = {}  # alert id -> digest queued or in flight
        self._in_flight: Item | None = None
        self._closing = threading.Event()
        self._wakeup = threading.Event()
        self._unflushed: list[Item] = []
        self._flushed_at = time.monotonic()
        self._abandoned = False
        self.counts = {
            "delivered": 0,
            "retried": 0,
            "failed": 0,
            "dead_lettered": 0,
            "duplicates": 0,
            "lost": 0,
        }
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"derisk-deliver-{self.name}", daemon=True)
        self._thread.start()

    # -- caller side -----------------------------------------------------------------------------
    def offer(self, item: Item) -> None:
        """Queue ``item`` unless this sink settled or holds the same content; never blocks."""
        alert_id = item.alert.alert_id
        with self._lock:
            if self._pending.get(alert_id) == item.digest or self.delivered_log.settled(
                alert_id, item.digest
            ):
                self.counts["duplicates"] += 1
                return
            if self._closing.is_set():
                reason = "the deliverer was closed"
            else:
                try:
                    self.queue.put_nowait(item)
                except queue.Full:
                    reason = f"queue full ({self.queue.maxsize} alerts waiting)"
                else:
                    self._pending[alert_id] = item.digest
                    self._wakeup.set()
                    return
        self._dead_letter(item, reason, 0)

    def status(self) -> dict[str, Any]:
        with self._lock:
            waiting = self.queue.qsize() + (1 if self._in_flight is not None else 0)
            waiting += len(self._unflushed)
            return {"queued": waiting, **self.counts, "last_error": self.last_error}

    def begin_close(self) -> None:
        """From now on: one attempt per alert, no waits; new alerts are dead-lettered."""
        self._closing.set()
        self._wakeup.set()

    def stop(self, deadline: float) -> None:
        """Deliver what can be delivered by ``deadline`` (``time.monotonic()``), one attempt per alert;
        dead-letter the rest, including an alert still in flight (it may have arrived too)."""
        self.begin_close()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if not self._thread.is_alive() and not self.queue.empty():  # never expected: say so, lose nothing
            log.error("%s: the worker ended with %d alerts queued", self.name, self.queue.qsize())
            self._abandoned = True
        if self._abandoned or self._thread.is_alive():
            with self._lock:
                self._abandoned = True
                stuck = self._in_flight
            self.sink.abort()
            if stuck is not None:
                self._dead_letter(stuck, "close timed out while sending (the receiver may also have it)", 1)
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                self._dead_letter(item, "close timed out before this alert was sent", 0)
        try:
            self.sink.close()
        except Exception as exc:  # a sink failing to close must not stop the others
            log.warning("%s: closing failed: %s", self.name, describe(exc))
        self.delivered_log.close()

    # -- worker side -----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            # Taking an item and marking it in flight is one step under the lock, so that stop()
            # always knows which alert the worker holds and no alert is left between the two.
            with self._lock:
                if self._abandoned:
                    break
                # offer() queues nothing once closing is set (under this lock), so an empty queue
                # seen after closing was set stays empty: only then may the worker end.
                closed = self._closing.is_set()
                try:
                    item: Item | None = self.queue.get_nowait()
                except queue.Empty:
                    item = None
                self._in_flight = item
            if item is None:
                self._flush()
                if closed:
                    return
                self._wakeup.wait(0.2)
                self._wakeup.clear()
                continue
            try:
                self._deliver(item)
            except Exception as exc:  # a bug in a sink must not kill the worker
                log.exception("%s: unexpected failure", self.name)
                with self._lock:
                    abandoned = self._abandoned
                if not abandoned:
                    self._note_error(describe(exc))
                    self._dead_letter(item, f"unexpected failure: {describe(exc)}", 1)
            finally:
                with self._lock:
                    self._in_flight = None
                    if not any(x is item for x in self._unflushed):
                        self._settle(item)
            if len(self._unflushed) >= FLUSH_EVERY or time.monotonic() - self._flushed_at >= FLUSH_SECONDS:
                self._flush()
        self._flush()

    def _flush(self) -> None:
        """Make what was written durable (the ECS file's fsync), then count those alerts delivered
        and remember them; sync the delivered log. One fsync per group of alerts, not per alert."""
        self._flushed_at = time.monotonic()
        items, self._unflushed = self._unflushed, []
        if items:
            try:
                self.sink.flush()
            except OSError as exc:
                reason = f"written, but could not be made durable: {describe(exc)}"
                with self._lock:
                    self.counts["failed"] += 1
                    self.last_error = reason
                for item in items:
                    self._dead_letter(item, reason, 1)
            else:
                with self._lock:
                    self.counts["delivered"] += len(items)
                for item in items:
                    self.delivered_log.record(item.alert.alert_id, item.digest)
            with self._lock:
                for item in items:
                    self._settle(item)
        self.delivered_log.sync()

    def _settle(self, item: Item) -> None:
        if self._pending.get(item.alert.alert_id) == item.digest:
            del self._pending[item.alert.alert_id]

    def _note_error(self, text: str) -> None:
        with self._lock:
            self.last_error = text

    def _deliver(self, item: Item) -> None:
        """Attempt until delivered or given up. Each outcome is decided under the lock together with
        clearing ``_in_flight``, so that stop() and the worker never both dead-letter an alert, and
        stop() never dead-letters one that was delivered."""
        attempt = 0
        while True:
            attempt += 1
            try:
                self.sink.send(item)
            except DeliveryFailed as exc:
                failure: DeliveryFailed = exc
            except OSError as exc:
                failure = DeliveryFailed(describe(exc))
            else:
                with self._lock:
                    if self._abandoned:
                        return  # stop() has dead-lettered it already
                    self._in_flight = None
                    self._unflushed.append(item)  # delivered once flushed (see _flush)
                return
            with self._lock:
                if self._abandoned:
                    return
                self.counts["failed"] += 1
                self.last_error = failure.reason
                final = None
                if not failure.retry:
                    final = f"refused: {failure.reason}"
                elif self._closing.is_set():
                    final = f"not delivered at close: {failure.reason}"
                elif attempt >= self.policy.max_attempts:
                    final = f"gave up after {attempt} attempt{'s' if attempt != 1 else ''}: {failure.reason}"
                else:
                    self.counts["retried"] += 1
                if final is not None:
                    self._in_flight = None
            log.warning(
                "%s: attempt %d for %s failed: %s", self.name, attempt, item.alert.alert_id, failure.reason
            )
            if final is not None:
                self._dead_letter(item, final, attempt)
                if not failure.retry:  # the same content would be refused again: settled
                    self.delivered_log.record(item.alert.alert_id, item.digest)
                return
            delay = backoff(attempt, self.policy)
            if failure.retry_after is not None:
                delay = max(delay, min(failure.retry_after, self.policy.max_delay))
            self._closing.wait(delay)  # closing cuts the wait short: one last attempt, then dead letter

    def _dead_letter(self, item: Item, reason: str, attempts: int) -> None:
        payload = None
        if self.payload_of is not None:
            try:
                payload = self.payload_of(item)
            except Exception:  # the alert itself is still recorded
                payload = None
        problem = self.dead.write(self.name, item, reason, attempts, payload)
        with self._lock:
            if problem is None:
                self.counts["dead_lettered"] += 1
            else:
                self.counts["lost"] += 1
                self.last_error = problem
        if problem is None:
            log.warning("%s: alert %s dead-lettered: %s", self.name, item.alert.alert_id, reason)
        else:
            log.error("%s: alert %s lost: %s (%s)", self.name, item.alert.alert_id, reason, problem)
