"""Request deadlines and steps, pure: one calendar month (Art. 12(3)), one extension of up to two months
with a reason, reminders a week before and once overdue; and the erasure ledger's chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from obhut.kit.errors import ConfigurationError
from obhut.rights import rules
from obhut.rights.ledger import Erasure, ErasureLedger
from obhut.rights.rules import Status, TransitionError

JAN31 = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)


class TestDeadline:
    def test_one_calendar_month_clamped_to_the_months_end(self) -> None:
        assert rules.deadline(JAN31) == datetime(2027, 2, 28, 9, 30, tzinfo=UTC)
        assert rules.deadline(datetime(2027, 12, 15, tzinfo=UTC)) == datetime(2028, 1, 15, tzinfo=UTC)
        assert rules.add_months(datetime(2028, 1, 31, tzinfo=UTC), 1).day == 29  # a leap year

    def test_an_extension_counts_from_receipt_once_with_a_reason(self) -> None:
        assert rules.extended(JAN31, 2, "many systems to search", already=False) == datetime(
            2027, 4, 30, 9, 30, tzinfo=UTC
        )
        with pytest.raises(TransitionError, match="once"):
            rules.extended(JAN31, 1, "many systems to search", already=True)
        with pytest.raises(TransitionError, match="1 or 2 months"):
            rules.extended(JAN31, 3, "many systems to search", already=False)
        with pytest.raises(TransitionError, match="say why"):
            rules.extended(JAN31, 1, "busy", already=False)

    def test_reminders_a_week_before_and_once_overdue(self) -> None:
        due = rules.deadline(JAN31)
        assert not rules.needs_reminder(due, due - timedelta(days=8), None)
        assert rules.needs_reminder(due, due - timedelta(days=6), None)
        assert not rules.needs_reminder(due, due - timedelta(days=5), due - timedelta(days=6))
        assert rules.needs_reminder(due, due + timedelta(hours=1), due - timedelta(days=6))
        assert not rules.needs_reminder(due, due + timedelta(days=2), due + timedelta(hours=1))


class TestSteps:
    def test_nothing_is_released_or_done_before_verification(self) -> None:
        for step in ("complete", "release"):
            with pytest.raises(TransitionError, match="verify the requester's identity"):
                rules.require(Status.RECEIVED, step)
        rules.require(Status.VERIFIED, "complete")
        with pytest.raises(TransitionError, match="completed"):
            rules.require(Status.COMPLETED, "reject")


class TestLedger:
    def test_entries_chain_and_an_edit_is_found_by_line(self, tmp_path: Path) -> None:
        ledger = ErasureLedger(tmp_path / "erasures.jsonl")
        assert ledger.entries() == []
        first = [Erasure("acme", f"id-{n}", JAN31 + timedelta(minutes=n)) for n in range(3)]
        ledger.append(first[:2])
        ledger.append(first[2:])
        assert ledger.entries() == first
        lines = ledger.path.read_text().splitlines()
        ledger.path.write_text("\n".join([lines[0], lines[1].replace("id-1", "id-9"), lines[2]]) + "\n")
        with pytest.raises(ConfigurationError, match="line 2"):
            ledger.entries()
