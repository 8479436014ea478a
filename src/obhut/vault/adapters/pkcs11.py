"""Root keys on a PKCS#11 token: an HSM, or SoftHSM2 in tests. The AES-256 root keys are token objects
labelled with their ref, sensitive and never extractable; wrap and unwrap run AES-GCM on the token.

Disabling clears CKA_ENCRYPT and CKA_DECRYPT on the key object. PKCS#11 has no standard "disabled" flag,
but both attributes are modifiable in the standard and in SoftHSM2, they persist on the token object, and
the token itself then refuses every encrypt and decrypt (CKR_KEY_FUNCTION_NOT_PERMITTED). `enable` sets
them back. A token that keeps them read-only gets a KeyProviderError saying so.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pkcs11 import MGF, Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.mechanisms import GCMParams

from obhut.kit.errors import ConfigurationError
from obhut.vault.ports import KeyProviderError, KeyUnusableError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from obhut.vault.ports import WrapItem

_NONCE = 12
_TAG_BITS = 128
_MIN_WRAPPED = _NONCE + _TAG_BITS // 8
_AES_256 = 32
_RSA_BYTES = 512  # RSA-4096 wrapping key
_KWP_AES_256 = 40  # RFC 5649 wraps 32 bytes into 40
_WRAPPING_LABEL = "obhut-wrapping-key"
_ROOT_KEY = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.MODIFIABLE: True,  # disable/enable change CKA_ENCRYPT and CKA_DECRYPT
}
_ROOT_KEY_USES = MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT
# A handle that stopped pointing at an object: another process destroyed or replaced the key.
_STALE_HANDLE = (pkcs11.ObjectHandleInvalid, pkcs11.KeyHandleInvalid)
# SoftHSM2 answers a failed GCM tag check with CKR_GENERAL_ERROR; other tokens use the data errors.
_BAD_CIPHERTEXT = (
    pkcs11.GeneralError,
    pkcs11.EncryptedDataInvalid,
    pkcs11.EncryptedDataLenRange,
    pkcs11.DataLenRange,
)
_BAD_WRAPPED_KEY = (*_BAD_CIPHERTEXT, pkcs11.WrappedKeyInvalid, pkcs11.WrappedKeyLenRange, pkcs11.DataInvalid)
_GONE = (pkcs11.SessionClosed, pkcs11.SessionHandleInvalid, pkcs11.DeviceRemoved, pkcs11.TokenNotPresent)
_IMPORT_HINT = (
    "wrap it for the public key 'obhut keys wrapping-key' prints (RSA-OAEP SHA-256 + AES key wrap with padding)"
)


def _mgf1_sha256(seed: bytes, length: int) -> bytes:
    out = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(length // 32 + 1))
    return out[:length]


def _xor(left: bytes, right: bytes) -> bytes:
    return (int.from_bytes(left, "big") ^ int.from_bytes(right, "big")).to_bytes(len(left), "big")


def _oaep_sha256_decode(block: bytes) -> bytes:
    """EME-OAEP decoding (RFC 8017, 7.1.2) with SHA-256 and an empty label, of a raw RSA decryption."""
    size = hashlib.sha256().digest_size
    encoded = block.rjust(_RSA_BYTES, b"\0")
    masked_seed, masked_db = encoded[1 : 1 + size], encoded[1 + size :]
    seed = _xor(masked_seed, _mgf1_sha256(masked_db, size))
    db = _xor(masked_db, _mgf1_sha256(seed, len(masked_db)))
    rest = db[size:].lstrip(b"\0")
    label_ok = hmac.compare_digest(db[:size], hashlib.sha256(b"").digest())
    if len(encoded) != _RSA_BYTES or encoded[0] != 0 or not label_ok or rest[:1] != b"\x01":
        raise ValueError("not an OAEP SHA-256 block")  # one message for every cause: no padding oracle
    return rest[1:]


class Pkcs11KeyProvider:
    """One logged-in session per provider, guarded by a lock, with key handles cached by ref; a batch is
    one loop of token calls inside that session.

    Key handles are typed `Any`: python-pkcs11 adds encrypt/decrypt/unwrap methods to key objects at run
    time, according to the key's capabilities.
    """

    name = "pkcs11"

    def __init__(self, module_path: str, token_label: str, pin: str) -> None:
        self._module_path = module_path
        self._token_label = token_label
        self._pin = pin
        self._lock = threading.Lock()
        self._session: Any = None
        self._keys: dict[str, Any] = {}
        self._wrapping: tuple[Any, Any] | None = None
        self._oaep_sha256_on_token: bool | None = None

    # --- session ------------------------------------------------------------------------------------
    def _open(self) -> Any:
        if self._session is not None:
            return self._session
        where = f"PKCS#11 token '{self._token_label}' ({self._module_path})"
        try:
            token = pkcs11.lib(self._module_path).get_token(token_label=self._token_label)
        except pkcs11.NoSuchToken:
            raise ConfigurationError(
                f"there is no {where}; create it, e.g. 'softhsm2-util --init-token --free --label {self._token_label}'"
            ) from None
        except pkcs11.PKCS11Error as error:
            raise ConfigurationError(f"the PKCS#11 module {self._module_path} cannot be loaded: {error}") from None
        try:
            self._session = token.open(rw=True, user_pin=self._pin)
        except pkcs11.UserAlreadyLoggedIn:
            # PKCS#11 logs in per process: another session of this process already did (with its PIN;
            # this PIN is then not checked again, as the token cannot log in twice).
            self._session = token.open(rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
            raise ConfigurationError(f"the {where} rejected the configured PIN") from None
        except pkcs11.PinLocked:
            raise ConfigurationError(f"the {where} has locked its PIN; ask its security officer") from None
        return self._session

    def _forget_session(self) -> None:
        self._session, self._keys, self._wrapping = None, {}, None

    @contextmanager
    def _session_held(self) -> Iterator[Any]:
        with self._lock:
            try:
                yield self._open()
            except _GONE as error:
                self._forget_session()
                raise KeyProviderError(
                    f"the session with PKCS#11 token '{self._token_label}' was lost "
                    f"({type(error).__name__}); retry, and check the HSM if it persists"
                ) from error
            except pkcs11.PKCS11Error as error:
                raise KeyProviderError(
                    f"the PKCS#11 token '{self._token_label}' failed: {type(error).__name__} {error}"
                ) from error

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
            self._forget_session()

    # --- keys ---------------------------------------------------------------------------------------
    def _labelled(self, session: Any, ref: str) -> list[Any]:
        # list(): a search left unfinished keeps the session busy (CKR_OPERATION_ACTIVE)
        return list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: ref}))

    def _refuse_existing(self, session: Any, ref: str) -> None:
        if self._labelled(session, ref):
            raise KeyProviderError(f"root key '{ref}' already exists on PKCS#11 token '{self._token_label}'")

    def _key(self, session: Any, ref: str) -> Any:
        key = self._keys.get(ref)
        if key is None:
            try:
                key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=ref)
            except pkcs11.NoSuchKey:
                raise KeyUnusableError(
                    f"root key '{ref}' does not exist on PKCS#11 token '{self._token_label}'"
                ) from None
            except pkcs11.MultipleObjectsReturned:
                raise KeyProviderError(
                    f"several keys on PKCS#11 token '{self._token_label}' are labelled '{ref}'; "
                    "remove the duplicates with the HSM's tools"
                ) from None
            # python-pkcs11 gives a key object its encrypt/decrypt methods from the attributes it had when
            # looked up; only an enabled key is cached, so a re-enable elsewhere is seen on the next call.
            if hasattr(key, "encrypt") and hasattr(key, "decrypt"):
                self._keys[ref] = key
        return key

    def _apply(self, session: Any, ref: str, operation: Callable[[Any], list[bytes]], *, unwrap: bool) -> list[bytes]:
        key = self._key(session, ref)
        disabled = KeyUnusableError(
            f"root key '{ref}' is disabled on PKCS#11 token '{self._token_label}'; ask your key "
            "administrator to enable it again"
        )
        if ref not in self._keys:  # looked up while disabled: the object has no encrypt/decrypt
            raise disabled
        try:
            return operation(key)
        except _STALE_HANDLE:
            raise
        except pkcs11.PKCS11Error as error:
            if not (key[Attribute.ENCRYPT] and key[Attribute.DECRYPT]):
                raise disabled from None
            if unwrap and isinstance(error, _BAD_CIPHERTEXT):
                raise KeyUnusableError(f"a secret wrapped under root key '{ref}' failed to authenticate") from None
            raise

    def _with_key(self, ref: str, operation: Callable[[Any], list[bytes]], *, unwrap: bool) -> list[bytes]:
        with self._session_held() as session:
            try:
                return self._apply(session, ref, operation, unwrap=unwrap)
            except _STALE_HANDLE:
                self._keys.pop(ref, None)
                return self._apply(session, ref, operation, unwrap=unwrap)

    # --- KeyProvider --------------------------------------------------------------------------------
    def create_key(self, ref: str) -> None:
        with self._session_held() as session:
            self._refuse_existing(session, ref)
            self._keys[ref] = session.generate_key(
                KeyType.AES,
                _AES_256 * 8,
                label=ref,
                store=True,
                capabilities=_ROOT_KEY_USES,
                template=_ROOT_KEY,
            )

    def _wrapping_pair(self, session: Any) -> tuple[Any, Any]:
        if self._wrapping is None:
            try:
                public = session.get_key(ObjectClass.PUBLIC_KEY, KeyType.RSA, label=_WRAPPING_LABEL)
                private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.RSA, label=_WRAPPING_LABEL)
            except pkcs11.NoSuchKey:
                public, private = session.generate_keypair(
                    KeyType.RSA,
                    _RSA_BYTES * 8,
                    label=_WRAPPING_LABEL,
                    store=True,
                    capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT | MechanismFlag.UNWRAP,
                    public_template={Attribute.TOKEN: True},
                    private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
                )
            self._wrapping = (public, private)
        return self._wrapping

    def wrapping_public_key_pem(self) -> str:
        with self._session_held() as session:
            public, _ = self._wrapping_pair(session)
            modulus, exponent = public[Attribute.MODULUS], public[Attribute.PUBLIC_EXPONENT]
        numbers = rsa.RSAPublicNumbers(int.from_bytes(exponent, "big"), int.from_bytes(modulus, "big"))
        return (
            numbers.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def _unwrap_ephemeral(self, session: Any, private: Any, block: bytes) -> Any:
        template = {Attribute.TOKEN: False, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
        if self._oaep_sha256_on_token is not False:
            try:
                key = private.unwrap_key(
                    ObjectClass.SECRET_KEY,
                    KeyType.AES,
                    block,
                    mechanism=Mechanism.RSA_PKCS_OAEP,
                    mechanism_param=(Mechanism.SHA256, MGF.SHA256, None),
                    capabilities=MechanismFlag.UNWRAP,
                    template=template,
                )
            except (pkcs11.ArgumentsBad, pkcs11.MechanismParamInvalid, pkcs11.MechanismInvalid):
                if self._oaep_sha256_on_token:
                    raise
                self._oaep_sha256_on_token = False
            else:
                self._oaep_sha256_on_token = True
                return key
        # SoftHSM2 2.6 does OAEP with SHA-1 only. Fall back to a raw RSA decryption on the token and the
        # OAEP decoding here; the RSA private key stays on the token, the ephemeral key passes through this
        # process for the length of the import and goes back to the token as a session object.
        ephemeral = _oaep_sha256_decode(private.decrypt(block, mechanism=Mechanism.RSA_X_509))
        if len(ephemeral) != _AES_256:
            raise ValueError("the ephemeral key is not AES-256")
        return session.create_object(
            {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.AES,
                Attribute.VALUE: ephemeral,
                Attribute.UNWRAP: True,
                Attribute.ENCRYPT: False,
                Attribute.DECRYPT: False,
                Attribute.WRAP: False,
                **template,
            }
        )

    def import_key(self, ref: str, wrapped_material: bytes) -> None:
        if len(wrapped_material) != _RSA_BYTES + _KWP_AES_256:
            raise KeyUnusableError(
                f"imported key material is {len(wrapped_material)} bytes; an AES-256 key wrapped for "
                f"RSA-4096 is {_RSA_BYTES + _KWP_AES_256}; {_IMPORT_HINT}"
            )
        with self._session_held() as session:
            self._refuse_existing(session, ref)
            _, private = self._wrapping_pair(session)
            try:
                ephemeral = self._unwrap_ephemeral(session, private, wrapped_material[:_RSA_BYTES])
                try:
                    key = ephemeral.unwrap_key(
                        ObjectClass.SECRET_KEY,
                        KeyType.AES,
                        wrapped_material[_RSA_BYTES:],
                        label=ref,
                        mechanism=Mechanism.AES_KEY_WRAP_PAD,  # RFC 5649 in SoftHSM2
                        store=True,
                        capabilities=_ROOT_KEY_USES,
                        template=_ROOT_KEY,
                    )
                finally:
                    ephemeral.destroy()
            except (ValueError, *_BAD_WRAPPED_KEY):
                raise KeyUnusableError(f"the imported key material could not be unwrapped; {_IMPORT_HINT}") from None
            # SoftHSM2 leaves CKA_VALUE_LEN empty on unwrapped keys and takes any length; 40 wrapped bytes
            # hold 25 to 32, and of those only 32 makes a working AES key.
            try:
                key.encrypt(b"", mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(os.urandom(_NONCE)))
            except pkcs11.PKCS11Error:
                key.destroy()
                raise KeyUnusableError("imported key material is not an AES-256 key (32 bytes)") from None
            self._keys[ref] = key

    def wrap(self, ref: str, items: Sequence[WrapItem]) -> list[bytes]:
        def encrypt_all(key: Any) -> list[bytes]:
            out = []
            for item in items:
                nonce = os.urandom(_NONCE)
                params = GCMParams(nonce, item.aad, _TAG_BITS)
                out.append(nonce + key.encrypt(item.data, mechanism=Mechanism.AES_GCM, mechanism_param=params))
            return out

        return self._with_key(ref, encrypt_all, unwrap=False)

    def unwrap(self, ref: str, items: Sequence[WrapItem]) -> list[bytes]:
        if any(len(item.data) < _MIN_WRAPPED for item in items):
            raise KeyUnusableError(f"a secret given to root key '{ref}' is too short to be a wrapped secret")

        def decrypt_all(key: Any) -> list[bytes]:
            out = []
            for item in items:
                params = GCMParams(item.data[:_NONCE], item.aad, _TAG_BITS)
                out.append(key.decrypt(item.data[_NONCE:], mechanism=Mechanism.AES_GCM, mechanism_param=params))
            return out

        return self._with_key(ref, decrypt_all, unwrap=True)

    def _set_enabled(self, ref: str, *, enabled: bool) -> None:
        with self._session_held() as session:
            self._keys.pop(ref, None)  # look the key up afresh: another process may have destroyed it
            key = self._key(session, ref)
            try:
                key[Attribute.ENCRYPT] = enabled
                key[Attribute.DECRYPT] = enabled
                self._keys.pop(ref, None)  # its methods follow the old attributes
            except pkcs11.AttributeReadOnly:
                raise KeyProviderError(
                    f"PKCS#11 token '{self._token_label}' does not let CKA_ENCRYPT/CKA_DECRYPT change, so "
                    f"root key '{ref}' cannot be disabled or enabled here; use the HSM's own tools"
                ) from None

    def disable(self, ref: str) -> None:
        self._set_enabled(ref, enabled=False)

    def enable(self, ref: str) -> None:
        self._set_enabled(ref, enabled=True)

    def destroy(self, ref: str) -> None:
        with self._session_held() as session:
            self._keys.pop(ref, None)
            for key in self._labelled(session, ref):
                key.destroy()

    def exists(self, ref: str) -> bool:
        with self._session_held() as session:
            return bool(self._labelled(session, ref))
