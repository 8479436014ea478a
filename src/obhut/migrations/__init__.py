"""Alembic migrations for the databases: `main` (customer data), `keystore` (wrapped keys) and, where one is
configured, `sensitive` (the categories kept apart)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from obhut.kit.settings import Settings

HERE = Path(__file__).parent


def alembic_config(target: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(HERE / target))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["target"] = target
    return config


def urls(settings: Settings) -> dict[str, str]:
    return settings.database_urls


def upgrade(settings: Settings) -> None:
    for target, url in urls(settings).items():
        command.upgrade(alembic_config(target, url), "head")


def check(settings: Settings) -> None:
    """Raises if the models and the migrations disagree (what 'alembic check' does)."""
    for target, url in urls(settings).items():
        command.check(alembic_config(target, url))
