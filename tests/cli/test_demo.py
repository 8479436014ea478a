"""The demo seed: never in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from obhut.cli import demo
from obhut.container import build
from obhut.kit.settings import Environment, Settings


def test_the_demo_is_refused_in_production(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, environment=Environment.PRODUCTION, allow_local_keys=True)
    built = build(settings)
    try:
        with pytest.raises(RuntimeError, match="development machines only"):
            demo.seed(built)
    finally:
        built.close()
