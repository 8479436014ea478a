"""The restore drill of `test_erased_means_erased` with the financial and notes categories kept in a sensitive
database of their own: the backup holds three databases, and the scan covers the third."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from obhut.kit.settings import Settings
from tests.conftest import sensitive_store
from tests.rights.test_erased_means_erased import test_a_restored_backup_does_not_resurrect_an_erased_customer

__all__ = ["test_a_restored_backup_does_not_resurrect_an_erased_customer"]


@pytest.fixture
def settings(settings: Settings, backend: str) -> Iterator[Settings]:
    with sensitive_store(settings, backend) as segmented:
        yield segmented
