from __future__ import annotations

import os
import re
import time
import uuid

_WORKSPACE_ID = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


_VERSION_AND_VARIANT = 0xF << 76 | 0x3 << 62
_VERSION_7 = 0x7 << 76 | 0x2 << 62  # version 7, RFC 9562 variant


def new_id() -> str:
    """A time-ordered UUID (version 7 layout), so new rows land at the end of B-tree indexes."""
    return new_ids(1)[0]


def new_ids(count: int) -> list[str]:
    """`count` new ids of the same millisecond: one clock read and one call for their random bits."""
    stamp = (time.time_ns() // 1_000_000 & ((1 << 48) - 1)) << 80
    noise = os.urandom(10 * count)
    out = []
    for offset in range(0, 10 * count, 10):
        value = (stamp | int.from_bytes(noise[offset : offset + 10])) & ~_VERSION_AND_VARIANT | _VERSION_7
        digits = f"{value:032x}"
        out.append(f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}")
    return out


def is_valid_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def is_valid_workspace_id(value: str) -> bool:
    return bool(_WORKSPACE_ID.fullmatch(value))
