"""The import boundaries of pyproject's [tool.importlinter] contracts, checked on every test run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.split("Contracts:")[-1].split("kept")[0]


def test_no_source_file_past_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "src").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_migrations_match_the_models(tmp_path: Path) -> None:
    from obhut import migrations  # noqa: PLC0415
    from obhut.kit.settings import Settings  # noqa: PLC0415

    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/m.db",
        keystore_url=f"sqlite:///{tmp_path}/k.db",
        sensitive_url=f"sqlite:///{tmp_path}/s.db",
    )
    assert sorted(migrations.urls(settings)) == ["keystore", "main", "sensitive"]
    migrations.upgrade(settings)
    migrations.check(settings)
