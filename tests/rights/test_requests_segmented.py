"""Exports, answers and erasures of `test_requests` with the financial and notes categories kept in a sensitive
database of their own: a retention duty for financial data still keeps it, and the export still holds it."""

from __future__ import annotations

import pytest

from tests.rights.test_requests import TestAnswering, TestErasure, TestExport

__all__ = ["TestAnswering", "TestErasure", "TestExport"]
pytestmark = pytest.mark.sensitive_store
