"""Retention, pure: periods from collection, last activity or contract end; legal duties keep a category
from erasure until they end; legal holds keep what they name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from obhut.retention import rules
from obhut.retention.rules import Action, Anchor, Anchors, Hold, Policy

AT = datetime(2027, 6, 1, tzinfo=UTC)
TAX = Policy("financial", 3650, Anchor.CONTRACT_END, Action.DELETE, "AO §147 (10 years)")
CONTACT = Policy("contact", 365, Anchor.LAST_ACTIVITY, Action.ANONYMISE)


def _anchors(contract_end: datetime | None = None, idle_days: int = 0) -> Anchors:
    return Anchors(AT - timedelta(days=4000), AT - timedelta(days=idle_days), contract_end)


class TestPeriods:
    def test_a_period_counts_from_its_anchor(self) -> None:
        assert rules.due_categories([CONTACT], _anchors(idle_days=400), AT) == {"contact": Action.ANONYMISE}
        assert rules.due_categories([CONTACT], _anchors(idle_days=300), AT) == {}

    def test_a_period_from_the_contract_end_waits_for_it(self) -> None:
        assert rules.ends_at(TAX, _anchors()) is None
        assert rules.due_categories([TAX], _anchors(), AT) == {}
        ended = AT - timedelta(days=3651)
        assert rules.due_categories([TAX], _anchors(contract_end=ended), AT) == {"financial": Action.DELETE}


class TestWhatErasureKeeps:
    def test_a_running_legal_duty_keeps_its_category_until_it_ends(self) -> None:
        ended = AT - timedelta(days=100)
        kept = rules.retained([TAX, CONTACT], [], "c1", {"financial", "contact"}, AT, _anchors(contract_end=ended))
        assert kept == {"financial": ("AO §147 (10 years)", ended + timedelta(days=3650))}
        assert rules.retained([TAX], [], "c1", {"contact"}, AT, _anchors(contract_end=ended)) == {}
        long_ago = AT - timedelta(days=4000)
        assert rules.retained([TAX], [], "c1", {"financial"}, AT, _anchors(contract_end=long_ago)) == {}

    def test_a_hold_keeps_what_it_names(self) -> None:
        holds = [Hold("h1", "c1", None, "case 2027-17"), Hold("h2", None, "notes", "audit")]
        kept = rules.retained([], holds, "c1", {"contact", "notes"}, AT, _anchors())
        assert kept == {"contact": ("legal hold: case 2027-17", None), "notes": ("legal hold: audit", None)}
        assert rules.held(holds, "c2", {"contact", "notes"}) == {"notes"}
