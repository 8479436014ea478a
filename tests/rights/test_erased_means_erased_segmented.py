"""The restore drill of `test_erased_means_erased` with the financial and notes categories kept in a sensitive
database of their own: the backup holds three databases, and the scan covers the third."""

from __future__ import annotations

import pytest

from tests.rights.test_erased_means_erased import test_a_restored_backup_does_not_resurrect_an_erased_customer

__all__ = ["test_a_restored_backup_does_not_resurrect_an_erased_customer"]
pytestmark = pytest.mark.sensitive_store
