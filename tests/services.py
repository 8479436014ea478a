"""How tests treat outside components: skip with a reason on a developer machine that lacks one,
fail in CI (`OBHUT_REQUIRE_SERVICES=1`), where every component must be there."""

from __future__ import annotations

import os

import pytest

REQUIRED = os.environ.get("OBHUT_REQUIRE_SERVICES") == "1"


def unavailable(component: str, reason: str) -> None:
    """Call when `component` is missing: skips the test, or fails it when services are required."""
    message = f"{component} is not available: {reason}"
    if REQUIRED:
        pytest.fail(f"{message} (OBHUT_REQUIRE_SERVICES=1, so this is an error)")
    pytest.skip(message)
