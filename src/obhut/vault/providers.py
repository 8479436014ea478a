"""Builds the configured key providers from settings (the composition root calls it)."""

from __future__ import annotations

from obhut.kit.errors import ConfigurationError
from obhut.kit.settings import Settings
from obhut.vault.adapters.local import LocalKeyProvider
from obhut.vault.ports import KeyProvider


def build_providers(settings: Settings) -> dict[str, KeyProvider]:
    providers: dict[str, KeyProvider] = {}
    if not settings.is_production or settings.allow_local_keys:
        providers["local"] = LocalKeyProvider(settings.resolved_key_file)
    elif settings.key_provider == "local":
        raise ConfigurationError(
            "the local key file is refused in production: configure OBHUT_KEY_PROVIDER=pkcs11 or openbao, "
            "or set OBHUT_ALLOW_LOCAL_KEYS=1 if you accept a key file on this host"
        )
    if settings.pkcs11_module:
        from obhut.vault.adapters.pkcs11 import Pkcs11KeyProvider  # noqa: PLC0415 - optional engine

        providers["pkcs11"] = Pkcs11KeyProvider(
            settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin.get_secret_value()
        )
    if settings.openbao_addr:
        from obhut.vault.adapters.openbao import OpenBaoKeyProvider  # noqa: PLC0415 - optional engine

        providers["openbao"] = OpenBaoKeyProvider(
            settings.openbao_addr, settings.openbao_token.get_secret_value(), settings.openbao_mount
        )
    if settings.key_provider not in providers:
        raise ConfigurationError(
            f"OBHUT_KEY_PROVIDER={settings.key_provider} but that provider is not configured; "
            "see the README's configuration section"
        )
    return providers
