from __future__ import annotations

from datetime import UTC, date, datetime


def now() -> datetime:
    """The current time, always timezone-aware UTC."""
    return datetime.now(UTC)


def today() -> date:
    return now().date()
