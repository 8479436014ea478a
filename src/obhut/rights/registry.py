"""The one registry of subject handlers: exports and erasures ask every domain in it, in order."""

from __future__ import annotations

from collections.abc import Iterator

from obhut.rights.ports import SubjectHandler


class Registry:
    def __init__(self, handlers: list[SubjectHandler]) -> None:
        domains = [h.domain for h in handlers]
        if len(set(domains)) != len(domains):
            raise ValueError(f"one handler per domain: {sorted(domains)}")
        self._handlers = list(handlers)

    def __iter__(self) -> Iterator[SubjectHandler]:
        return iter(self._handlers)

    def covered_tables(self) -> set[str]:
        return {table for handler in self._handlers for table in handler.tables}
