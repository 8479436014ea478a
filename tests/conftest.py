"""Fixtures: every storage test runs on SQLite and on PostgreSQL (required in CI)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from alembic import command
from fastapi.testclient import TestClient
from stdnum import luhn

from obhut import migrations
from obhut.access import service as access
from obhut.access.rules import Effect, FieldDecision, ReadPlan
from obhut.api.app import create_app
from obhut.container import Container, build
from obhut.customers.rules import FIELDS
from obhut.kit.db import unit_of_work
from obhut.kit.settings import Settings
from obhut.workspaces import service as workspaces
from tests.services import unavailable

PG_ADMIN = os.environ.get("OBHUT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
WORKSPACE = "acme"


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        unavailable("PostgreSQL", f"cannot connect to {PG_ADMIN} ({type(error).__name__})")
        raise


def _pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def pg_templates() -> Iterator[tuple[str, str]]:
    """Migrated template databases, cloned per test (fast) instead of migrated per test."""
    suffix = uuid.uuid4().hex[:8]
    names = (f"obhut_tpl_main_{suffix}", f"obhut_tpl_keys_{suffix}")
    with _pg_admin() as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    migrations.upgrade(Settings(database_url=_pg_url(names[0]), keystore_url=_pg_url(names[1])))
    from sqlalchemy import create_engine  # noqa: PLC0415

    create_engine(_pg_url(names[0])).dispose()  # no lingering connections block cloning
    yield names
    with _pg_admin() as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("sqlite-template")
    main, keys = folder / "obhut.db", folder / "keystore.db"
    migrations.upgrade(Settings(database_url=f"sqlite:///{main}", keystore_url=f"sqlite:///{keys}"))
    return main, keys


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Fresh databases for one test; with the `sensitive_store` mark, a sensitive database beside them."""
    with _databases(backend, tmp_path, request) as found:
        if request.node.get_closest_marker("sensitive_store") is None:
            yield found
            return
        with sensitive_store(found, backend) as segmented:
            yield segmented


@contextmanager
def _databases(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    base = {"data_dir": tmp_path / "var", "key_shards": 8, "key_file": tmp_path / "var" / "master.key"}
    if backend == "sqlite":
        main, keys = request.getfixturevalue("sqlite_templates")
        (tmp_path / "var").mkdir()
        shutil.copy(main, tmp_path / "var" / "obhut.db")
        shutil.copy(keys, tmp_path / "var" / "keystore.db")
        yield Settings(**base)
        return
    templates = request.getfixturevalue("pg_templates")
    suffix = uuid.uuid4().hex[:8]
    names = (f"obhut_t_main_{suffix}", f"obhut_t_keys_{suffix}")
    with _pg_admin() as admin:
        for name, template in zip(names, templates, strict=True):
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield Settings(**base, database_url=_pg_url(names[0]), keystore_url=_pg_url(names[1]))
    with _pg_admin() as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def sensitive_store(settings: Settings, backend: str, categories: str = "financial,notes") -> Iterator[Settings]:
    """`settings` with `categories` kept in a sensitive database of their own (migrated here)."""
    if backend == "sqlite":
        url, name = f"sqlite:///{settings.data_dir / 'sensitive.db'}", ""
    else:
        name = f"obhut_t_sensitive_{uuid.uuid4().hex[:8]}"
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = _pg_url(name)
    segmented = settings.model_copy(update={"sensitive_url": url, "sensitive_categories": categories})
    command.upgrade(migrations.alembic_config("sensitive", url), "head")
    yield segmented
    if name:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    built = build(settings)
    with unit_of_work(built.sessions) as session:
        workspaces.create(session, built.vault, WORKSPACE)
    yield built
    built.close()


@pytest.fixture
def admin_token(container: Container) -> str:
    with unit_of_work(container.sessions) as session:
        return access.create_admin_token(session, "tests").token


@pytest.fixture
def client(container: Container, admin_token: str) -> Iterator[TestClient]:
    with TestClient(create_app(container=container)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {admin_token}"
        yield test_client


def reveal_all() -> ReadPlan:
    """A read plan that reveals every field: for tests of the vault and storage, not of policies."""
    return ReadPlan("owner", "support", None, 1, dict.fromkeys(FIELDS, FieldDecision(Effect.REVEAL)))


def luhn_valid(digits: str) -> str:
    """`digits` with the Luhn check digit appended: a well-formed card number that belongs to nobody."""
    return digits + luhn.calc_check_digit(digits)


def jane(**overrides: object) -> dict[str, object]:
    """An invented customer (reserved domain, made-up numbers)."""
    data: dict[str, object] = {
        "external_ref": "K-0001",
        "given_name": "Jane",
        "family_name": "Musterfrau",
        "birth_date": "1985-04-12",
        "email": "Jane.Musterfrau@example.com",
        "phone": "+49 30 1234567",
        "postal_address": {"line1": "Beispielweg 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "iban": "DE89 3704 0044 0532 0130 00",
        "card_number": "4111 1111 1111 1111",
        "notes": "Prefers email contact",
    }
    data.update(overrides)
    return data
