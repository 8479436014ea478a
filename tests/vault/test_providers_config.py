from __future__ import annotations

from pathlib import Path

import pytest

from obhut.kit.errors import ConfigurationError
from obhut.kit.settings import Environment, Settings
from obhut.vault.providers import build_providers


class TestLocalKeyFileOutsideDevelopment:
    def test_refused_in_production(self, tmp_path: Path) -> None:
        settings = Settings(environment=Environment.PRODUCTION, data_dir=tmp_path)
        with pytest.raises(ConfigurationError, match="OBHUT_ALLOW_LOCAL_KEYS=1"):
            build_providers(settings)

    def test_allowed_in_production_when_asked_for(self, tmp_path: Path) -> None:
        settings = Settings(environment=Environment.PRODUCTION, data_dir=tmp_path, allow_local_keys=True)
        assert set(build_providers(settings)) == {"local"}

    def test_the_default_in_development(self, tmp_path: Path) -> None:
        assert set(build_providers(Settings(data_dir=tmp_path))) == {"local"}

    def test_an_unconfigured_provider_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="OBHUT_KEY_PROVIDER=openbao"):
            build_providers(Settings(data_dir=tmp_path, key_provider="openbao"))
