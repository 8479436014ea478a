from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "obhut_adm_"  # noqa: S105 - a public prefix, not a secret


def new_token() -> str:
    """256 bits from the OS generator; the prefix lets secret scanners recognise a leaked token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # A plain hash suffices: the token has 256 bits of entropy, so there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()
