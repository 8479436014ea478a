"""The retention purge of `test_purge` with the financial and notes categories kept in a sensitive database of
their own: the survey still sees which categories each customer has."""

from __future__ import annotations

import pytest

from tests.retention.test_purge import (
    test_a_dry_run_reports_and_changes_nothing,
    test_the_purge_resumes_and_logs_its_proof,
    test_the_survey_finds_exactly_whom_a_period_has_ended_for,
)

__all__ = [
    "test_a_dry_run_reports_and_changes_nothing",
    "test_the_purge_resumes_and_logs_its_proof",
    "test_the_survey_finds_exactly_whom_a_period_has_ended_for",
]
pytestmark = pytest.mark.sensitive_store
