"""ReadAhead: an iterator run in a worker thread, a bounded number of items ahead."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from derisk.readahead import ReadAhead


def test_items_arrive_in_order_then_the_end_repeats() -> None:
    with ReadAhead(lambda: iter(range(1000))) as ahead:
        assert list(ahead) == list(range(1000))
        with pytest.raises(StopIteration):
            next(ahead)


def test_an_error_comes_out_as_itself_after_the_items_before_it() -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 3 is ragged")

    with ReadAhead(produce) as ahead:
        assert next(ahead) == 1 and next(ahead) == 2
        with pytest.raises(ValueError, match="line 3 is ragged"):
            next(ahead)
        with pytest.raises(StopIteration):
            next(ahead)


def test_the_worker_stays_at_most_depth_items_ahead() -> None:
    made: list[int] = []

    def produce() -> Iterator[int]:
        for n in range(100):
            made.append(n)
            yield n

    with ReadAhead(produce, depth=2) as ahead:
        assert next(ahead) == 0
        time.sleep(0.3)  # plenty of time to run ahead if it could
        # one taken, two queued, one made and waiting for room
        assert len(made) <= 4


def test_close_stops_the_worker_and_closes_the_reader_in_its_thread() -> None:
    closed_in: list[str] = []

    def produce() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed_in.append(threading.current_thread().name)

    ahead = ReadAhead(produce, name="reader-under-test")
    assert next(ahead) == 0
    ahead.close()
    assert closed_in == ["reader-under-test"]
    assert not any(t.name == "reader-under-test" for t in threading.enumerate())
    with pytest.raises(StopIteration):
        next(ahead)
