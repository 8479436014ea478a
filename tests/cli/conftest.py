"""The `obhut` command as an operator's shell runs it, pointed at the test's databases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from obhut.cli.main import app
from obhut.kit.settings import Settings

Obhut = Callable[..., Result]
DEFAULT = "default"
CHECKPOINTS = "checkpoints.txt"  # in the test's folder: where `obhut audit` publishes signed checkpoints


@pytest.fixture
def obhut(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Obhut:
    """`obhut ARGS...` with the environment an operator would set (and no stray .env in the folder)."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(
        env={
            "OBHUT_DATA_DIR": str(settings.data_dir),
            "OBHUT_DATABASE_URL": settings.resolved_database_url,
            "OBHUT_KEYSTORE_URL": settings.resolved_keystore_url,
            "OBHUT_KEY_FILE": str(settings.resolved_key_file),
            "OBHUT_KEY_SHARDS": "8",
            "OBHUT_KEY_PROVIDER": "local",
            "OBHUT_ENVIRONMENT": "development",
            "OBHUT_DEFAULT_WORKSPACE": DEFAULT,
            "OBHUT_AUDIT_CHECKPOINT_FILE": str(tmp_path / CHECKPOINTS),
            "COLUMNS": "200",  # rich wraps at the terminal width; keep key names on one line
        }
    )

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=stdin, catch_exceptions=False)

    return invoke
