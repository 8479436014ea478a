from __future__ import annotations

import os
import re
import time
import uuid

_WORKSPACE_ID = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


def new_id() -> str:
    """A time-ordered UUID (version 7 layout), so new rows land at the end of B-tree indexes."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10)) & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))


def is_valid_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def is_valid_workspace_id(value: str) -> bool:
    return bool(_WORKSPACE_ID.fullmatch(value))
