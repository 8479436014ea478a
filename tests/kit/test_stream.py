"""Reading ahead in a thread: everything arrives in order, an error arrives where it happened, and a caller
that stops early stops the thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from obhut.kit.stream import read_ahead


def test_everything_arrives_in_order() -> None:
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))


def test_an_error_while_reading_is_raised_to_the_caller_after_what_came_before() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise LookupError("the cursor broke")

    ahead = read_ahead(failing())
    assert (next(ahead), next(ahead)) == (1, 2)
    with pytest.raises(LookupError, match="the cursor broke"):
        next(ahead)


def test_stopping_early_stops_the_reader_where_it_was() -> None:
    taken: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            taken.append(n)
            yield n
            n += 1

    ahead = read_ahead(endless(), depth=2)
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert not any(t.name == "obhut-read-ahead" for t in threading.enumerate())
    assert len(taken) <= 5 + 2 + 2  # what was handed over, what the queue held, and one in the reader's hand
