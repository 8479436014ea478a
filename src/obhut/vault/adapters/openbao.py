"""Root keys in OpenBao (or Vault) Transit: the key never leaves the server, which wraps and unwraps for us.

Disabling uses OpenBao's Transit *soft delete* (`DELETE <mount>/keys/<name>/soft-delete`): the server then
refuses every encrypt and decrypt with "refusing to use soft-deleted key" and keeps the material until
`soft-delete-restore` (our `enable`) or a real delete (our `destroy`). HashiCorp Vault has no soft delete;
against Vault, `disable` fails with a KeyProviderError naming the missing endpoint.
"""

from __future__ import annotations

import base64
import threading
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import hvac
import requests

from obhut.vault.ports import KeyProviderError, KeyUnusableError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from obhut.vault.ports import WrapItem

# Every batch item is four JSON strings (two names, two values); the default listener refuses a request
# with more than 1000 strings (`max_request_json_strings`), so 249 items is the ceiling. Stay well below.
_CHUNK = 200
_KEY_TYPE = "aes256-gcm96"
_DENIED = (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN)
_ERROR_CHARS = 200  # server error strings are quoted in messages, cut short


class _RefusedError(Exception):
    """OpenBao answered with an error status; `errors` are the server's error strings (no request data)."""

    def __init__(self, status: int, errors: list[str]) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = errors

    @property
    def text(self) -> str:
        return "; ".join(self.errors)[:_ERROR_CHARS] or f"HTTP {self.status}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _chunks(items: Sequence[WrapItem]) -> Iterator[Sequence[WrapItem]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class OpenBaoKeyProvider:
    """Talks to Transit through hvac's HTTP adapter with `raise_exception=False`: hvac's own exceptions quote
    the whole response body, and a failed batch decrypt's body holds the plaintext of the items that did
    decrypt, so those bodies must never reach an exception message or traceback."""

    name = "openbao"

    def __init__(self, addr: str, token: str, mount: str = "transit", timeout: float = 30.0) -> None:
        self._addr = addr.rstrip("/")
        self._mount = mount.strip("/")
        self._client = hvac.Client(url=self._addr, token=token, timeout=timeout)
        self._mounted = False
        self._mount_lock = threading.Lock()

    # --- HTTP ---------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request; returns the JSON answer ({} for 204), raises _RefusedError on an error status."""
        try:
            response = self._client.adapter.request(method, f"/v1/{path}", json=body, raise_exception=False)
        except requests.RequestException as error:
            raise KeyProviderError(
                f"OpenBao at {self._addr} cannot be reached ({type(error).__name__}); "
                "check that it runs and that the configured address is right"
            ) from None
        if isinstance(response, dict):
            return response
        status = int(response.status_code)
        if status == HTTPStatus.NO_CONTENT:
            return {}
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if status < HTTPStatus.BAD_REQUEST:
            return answer if isinstance(answer, dict) else {}
        raise _RefusedError(status, self._error_strings(answer))

    @staticmethod
    def _error_strings(answer: Any) -> list[str]:
        if not isinstance(answer, dict):
            return []
        errors = [str(e) for e in answer.get("errors") or []]
        # A failed batch lists its errors per item; the items that succeeded carry data, which is skipped.
        results = (answer.get("data") or {}).get("batch_results") or []
        errors += sorted({str(r["error"]) for r in results if isinstance(r, dict) and r.get("error")})
        return errors

    def _transit(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        self._ensure_mount()
        return self._call(method, f"{self._mount}/{path}", body)

    def _ensure_mount(self) -> None:
        if self._mounted:
            return
        with self._mount_lock:
            if self._mounted:
                return
            try:
                self._call("post", f"sys/mounts/{self._mount}", {"type": "transit"})
            except _RefusedError as refused:
                # "already in use" is the normal case; a token without sudo on sys/mounts gets 403 and
                # relies on an operator having mounted Transit (a missing mount is reported on first use).
                if refused.status == HTTPStatus.BAD_REQUEST and "already in use" in refused.text:
                    pass
                elif refused.status not in _DENIED:
                    raise self._provider_error(refused, f"mount Transit at '{self._mount}'") from None
            self._mounted = True

    # --- error mapping ------------------------------------------------------------------------------
    def _provider_error(self, refused: _RefusedError, action: str) -> KeyProviderError:
        if refused.status in _DENIED:
            return KeyProviderError(
                f"OpenBao refused the token to {action} (HTTP {refused.status}: {refused.text}); "
                f"give it a policy covering '{self._mount}/*'"
            )
        if refused.status == HTTPStatus.NOT_FOUND and "no handler" in refused.text:
            return KeyProviderError(
                f"no Transit engine is mounted at '{self._mount}' on {self._addr}; "
                f"run 'bao secrets enable -path={self._mount} transit'"
            )
        return KeyProviderError(f"OpenBao failed to {action} (HTTP {refused.status}: {refused.text})")

    def _key_error(self, refused: _RefusedError, ref: str, action: str) -> Exception:
        text = refused.text
        if refused.status != HTTPStatus.BAD_REQUEST:
            return self._provider_error(refused, f"{action} with root key '{ref}'")
        if "soft-deleted" in text:
            return KeyUnusableError(
                f"root key '{ref}' is disabled (soft-deleted) in OpenBao; ask your key administrator to enable it again"
            )
        if "not found" in text:
            return KeyUnusableError(f"root key '{ref}' does not exist in OpenBao Transit at '{self._mount}'")
        if "authentication failed" in text:
            return KeyUnusableError(f"a secret wrapped under root key '{ref}' failed to authenticate")
        return KeyUnusableError(f"OpenBao refused to {action} with root key '{ref}': {text}")

    def _read_key(self, ref: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = self._transit("get", f"keys/{ref}").get("data") or {}
        except _RefusedError as refused:
            if refused.status == HTTPStatus.NOT_FOUND and "no handler" not in refused.text:
                return None
            raise self._provider_error(refused, f"read root key '{ref}'") from None
        return data

    def _existing_key(self, ref: str) -> dict[str, Any]:
        data = self._read_key(ref)
        if data is None:
            raise KeyUnusableError(f"root key '{ref}' does not exist in OpenBao Transit at '{self._mount}'")
        return data

    # --- KeyProvider --------------------------------------------------------------------------------
    def _refuse_existing(self, ref: str) -> None:
        # Transit's create is an upsert that keeps an existing key and says nothing (OpenBao 2.7), so
        # check first. Two processes creating the same ref at once would both succeed on one key.
        if self._read_key(ref) is not None:
            raise KeyProviderError(f"root key '{ref}' already exists in OpenBao Transit at '{self._mount}'")

    def create_key(self, ref: str) -> None:
        self._refuse_existing(ref)
        try:
            self._transit("post", f"keys/{ref}", {"type": _KEY_TYPE, "exportable": False})
        except _RefusedError as refused:
            raise self._provider_error(refused, f"create root key '{ref}'") from None

    def wrapping_public_key_pem(self) -> str:
        try:
            answer = self._transit("get", "wrapping_key")
        except _RefusedError as refused:
            raise self._provider_error(refused, "read the Transit wrapping key") from None
        return str(answer["data"]["public_key"])

    def import_key(self, ref: str, wrapped_material: bytes) -> None:
        self._refuse_existing(ref)
        body = {
            "ciphertext": _b64(wrapped_material),
            "hash_function": "SHA256",
            "type": _KEY_TYPE,
            "exportable": False,
        }
        try:
            self._transit("post", f"keys/{ref}/import", body)
        except _RefusedError as refused:
            # Transit answers a blob it cannot unwrap with 400 or 500 ("crypto/rsa: decryption error").
            if refused.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.INTERNAL_SERVER_ERROR):
                raise KeyUnusableError(
                    f"OpenBao could not import the key material ({refused.text}); wrap it for the public "
                    "key 'obhut keys wrapping-key' prints (RSA-OAEP SHA-256 + AES key wrap with padding)"
                ) from None
            raise self._provider_error(refused, f"import root key '{ref}'") from None

    def wrap(self, ref: str, items: Sequence[WrapItem]) -> list[bytes]:
        # Transit's encrypt creates a missing key on the fly (an upsert), which would quietly bring a
        # destroyed key back as a new one; so check the key first. The server still refuses soft-deleted keys.
        if self._existing_key(ref).get("soft_deleted"):
            raise KeyUnusableError(
                f"root key '{ref}' is disabled (soft-deleted) in OpenBao; ask your key administrator to enable it again"
            )
        out: list[bytes] = []
        for chunk in _chunks(items):
            batch = [{"plaintext": _b64(i.data), "associated_data": _b64(i.aad)} for i in chunk]
            try:
                answer = self._transit("post", f"encrypt/{ref}", {"batch_input": batch})
            except _RefusedError as refused:
                raise self._key_error(refused, ref, "wrap") from None
            out += [str(r["ciphertext"]).encode("ascii") for r in answer["data"]["batch_results"]]
        return out

    def unwrap(self, ref: str, items: Sequence[WrapItem]) -> list[bytes]:
        out: list[bytes] = []
        for chunk in _chunks(items):
            try:
                batch = [{"ciphertext": i.data.decode("ascii"), "associated_data": _b64(i.aad)} for i in chunk]
            except UnicodeDecodeError:
                raise KeyUnusableError(
                    f"a secret given to root key '{ref}' is not an OpenBao Transit ciphertext"
                ) from None
            try:
                answer = self._transit("post", f"decrypt/{ref}", {"batch_input": batch})
            except _RefusedError as refused:
                raise self._key_error(refused, ref, "unwrap") from None
            out += [base64.b64decode(r["plaintext"]) for r in answer["data"]["batch_results"]]
        return out

    def _soft_delete(self, ref: str, *, deleted: bool) -> None:
        self._existing_key(ref)  # soft-delete and restore answer 204 for a missing key too
        action = "disable" if deleted else "enable"
        try:
            if deleted:
                self._transit("delete", f"keys/{ref}/soft-delete")
            else:
                self._transit("post", f"keys/{ref}/soft-delete-restore")
        except _RefusedError as refused:
            raise self._provider_error(refused, f"{action} root key '{ref}' (needs OpenBao 2.1+)") from None

    def disable(self, ref: str) -> None:
        self._soft_delete(ref, deleted=True)

    def enable(self, ref: str) -> None:
        self._soft_delete(ref, deleted=False)

    def destroy(self, ref: str) -> None:
        if self._read_key(ref) is None:
            return
        try:
            self._transit("post", f"keys/{ref}/config", {"deletion_allowed": True})
            self._transit("delete", f"keys/{ref}")
        except _RefusedError as refused:
            raise self._provider_error(refused, f"destroy root key '{ref}'") from None

    def exists(self, ref: str) -> bool:
        return self._read_key(ref) is not None

    def close(self) -> None:
        self._client.adapter.close()
