"""What an access-log entry says and how it is hashed. Pure: no database, web or keys.

A leaf is the canonical JSON (sorted keys, no spaces) of the entry's stored columns, its position included,
so changing, reordering or renumbering entries changes the leaves and so the tree."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

ORIGIN_PREFIX = "obhut.example.com/access-log/"  # checkpoint origin: a schema-less URL naming the log
SIGNER = "checkpoint"  # the workspace key's use

# The columns a leaf commits to, in the stored form.
LEAF_COLUMNS = (
    "entry_id",
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "outcome",
    "subject",
    "target",
    "categories",
    "requested",
    "returned",
    "purpose",
    "ticket",
    "search_kind",
    "search_hash",
    "count",
    "address",
    "user_agent",
    "request_id",
    "sealed",
)
OUTCOMES = ("revealed", "masked", "denied", "ok", "failed")


def origin(workspace_id: str) -> str:
    return ORIGIN_PREFIX + workspace_id


def leaf_bytes(values: Mapping[str, Any]) -> bytes:
    """The canonical form of an entry: what its leaf hash commits to."""
    document: dict[str, Any] = {}
    for column in LEAF_COLUMNS:
        value = values[column]
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        elif hasattr(value, "isoformat"):
            value = value.isoformat(timespec="microseconds")
        document[column] = value
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def outcome_of(disclosure: Mapping[str, str]) -> str:
    """revealed if any field was, else masked if any was, else denied."""
    shown = set(disclosure.values())
    if "revealed" in shown:
        return "revealed"
    return "masked" if "masked" in shown else "denied"


def search_kind(field: str) -> str:
    """A search recorded by what it looked for, never by the term: 'email lookup', 'iban lookup'."""
    return f"{field} lookup"


def action(source: str, subject: str, verb: str) -> str:
    return f"{source}:{subject}:{verb}"


LOGIN = action("api", "session", "login")
MFA = action("api", "session", "mfa")
