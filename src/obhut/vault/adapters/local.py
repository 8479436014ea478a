"""Root keys in a local key file (mode 0600). The default for development; refused in production
unless explicitly allowed, since whoever reads the file and the database reads everything."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from obhut.kit.errors import ConfigurationError
from obhut.vault.ports import KeyProviderError, KeyUnusableError, WrapItem

_FORMAT = "obhut-keyfile-v1"
_NONCE = 12
_RSA_BYTES = 512  # RSA-4096 wrapping key


class LocalKeyProvider:
    name = "local"

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cache: dict[str, Any] | None = None
        self._mtime_ns = -1
        self._aeads: dict[str, AESGCM] = {}

    # --- the key file -------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            info = self._path.stat()
        except FileNotFoundError:
            return {"format": _FORMAT, "keys": {}}
        if self._cache is not None and info.st_mtime_ns == self._mtime_ns:
            return self._cache
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"key file {self._path} is readable by others (mode {oct(info.st_mode & 0o777)}); "
                f"run 'chmod 600 {self._path}'"
            )
        content: dict[str, Any] = json.loads(self._path.read_text(encoding="utf-8"))
        if content.get("format") != _FORMAT:
            raise ConfigurationError(f"{self._path} is not an Obhut key file")
        self._cache, self._mtime_ns, self._aeads = content, info.st_mtime_ns, {}
        return content

    @contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self._path.with_suffix(".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._cache = None
            content = self._load()
            yield content
            tmp = self._path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(content, handle)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(self._path)
            self._cache = None

    def _entry(self, ref: str) -> dict[str, Any]:
        entry: dict[str, Any] | None = self._load()["keys"].get(ref)
        if entry is None:
            raise KeyUnusableError(f"root key '{ref}' does not exist in the key file {self._path}")
        return entry

    def _aead(self, ref: str) -> AESGCM:
        entry = self._entry(ref)
        if not entry["enabled"]:
            raise KeyUnusableError(f"root key '{ref}' is disabled in the key file")
        aead = self._aeads.get(ref)
        if aead is None:
            aead = self._aeads[ref] = AESGCM(base64.b64decode(entry["material"]))
        return aead

    def _store(self, ref: str, material: bytes) -> None:
        with self._editing() as content:
            if ref in content["keys"]:
                raise KeyProviderError(f"root key '{ref}' already exists in the key file")
            content["keys"][ref] = {"material": base64.b64encode(material).decode(), "enabled": True}

    # --- KeyProvider --------------------------------------------------------------------------------
    def create_key(self, ref: str) -> None:
        self._store(ref, AESGCM.generate_key(bit_length=256))

    def _wrapping_private_key(self) -> rsa.RSAPrivateKey:
        pem = self._load().get("wrapping_key")
        if pem is None:
            with self._editing() as content:
                if "wrapping_key" not in content:
                    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BYTES * 8)
                    content["wrapping_key"] = key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ).decode()
            pem = self._load()["wrapping_key"]
        loaded = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ConfigurationError("the key file's wrapping key is not an RSA key")
        return loaded

    def wrapping_public_key_pem(self) -> str:
        public = self._wrapping_private_key().public_key()
        return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def import_key(self, ref: str, wrapped_material: bytes) -> None:
        private = self._wrapping_private_key()
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        try:
            ephemeral = private.decrypt(wrapped_material[:_RSA_BYTES], oaep)
            material = aes_key_unwrap_with_padding(ephemeral, wrapped_material[_RSA_BYTES:])
        except (ValueError, InvalidUnwrap) as error:
            raise KeyUnusableError(
                "the imported key material could not be unwrapped; wrap it for the public key "
                "'obhut keys wrapping-key' prints (RSA-OAEP SHA-256 + AES key wrap with padding)"
            ) from error
        if len(material) != 32:  # noqa: PLR2004 - AES-256
            raise KeyUnusableError(f"imported key material is {len(material)} bytes; AES-256 needs 32")
        self._store(ref, material)

    def wrap(self, ref: str, items: Sequence[WrapItem]) -> list[bytes]:
        aead = self._aead(ref)
        out = []
        for item in items:
            nonce = os.urandom(_NONCE)
            out.append(nonce + aead.encrypt(nonce, item.data, item.aad))
        return out

    def unwrap(self, ref: str, items: Sequence[WrapItem]) -> list[bytes]:
        aead = self._aead(ref)
        try:
            return [aead.decrypt(item.data[:_NONCE], item.data[_NONCE:], item.aad) for item in items]
        except InvalidTag as error:
            raise KeyUnusableError(f"a secret wrapped under root key '{ref}' failed to authenticate") from error

    def _set_enabled(self, ref: str, *, enabled: bool) -> None:
        with self._editing() as content:
            if ref not in content["keys"]:
                raise KeyUnusableError(f"root key '{ref}' does not exist in the key file {self._path}")
            content["keys"][ref]["enabled"] = enabled

    def disable(self, ref: str) -> None:
        self._set_enabled(ref, enabled=False)

    def enable(self, ref: str) -> None:
        self._set_enabled(ref, enabled=True)

    def destroy(self, ref: str) -> None:
        with self._editing() as content:
            content["keys"].pop(ref, None)

    def exists(self, ref: str) -> bool:
        return ref in self._load()["keys"]
