"""Pausing Python's cyclic garbage collector around a bulk step.

A rotation batch makes hundreds of thousands of small objects (rows, keys, associated data) that reference
counting frees as the step ends; none forms a cycle. Meanwhile the collector runs its full passes over every
object the process holds (a key cache of 65,536 shard keys included), which cost a rotation a fifth of its
time. A paused collector still frees by reference counting; whatever cycles a step leaves are collected on
the next pass after it resumes."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_paused = 0  # steps inside `paused()`, in every thread: the collector resumes when the last one leaves
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection while the block runs (in any thread); as it was before, once every block has left."""
    global _paused, _was_enabled  # noqa: PLW0603 - one collector per process, so one count
    with _lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()
