"""Synthetic staff activity with labelled insiders, for the tests and benchmark of `obhut.audit.detectors`.

No public labelled data fits an access log of customer records (CERT's insider set is logons, files and e-mail,
and not obtainable here), so this generates it, deterministically from a seed. Staff have a role, a shift, their
own activity level and days off; support agents and billing clerks work on tickets, analysts export now and
then, billing reveals IBANs, privacy officers reveal everything for data-subject requests and use break-glass
rarely. There are legitimate spikes (team-wide busy days, personal busy days, overtime, an early start). Seven
insider scenarios are injected, each on two or three days from `insider_from` on. Test and benchmark data only."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from obhut.audit.detectors import Activity

CATEGORY = {
    "given_name": "identity",
    "family_name": "identity",
    "birth_date": "identity",
    "email": "contact",
    "phone": "contact",
    "postal_address": "contact",
    "iban": "financial",
    "card": "financial",
    "notes": "notes",
}
R, M = "revealed", "masked"
SUPPORT = {"given_name": R, "family_name": R, "birth_date": M, "email": R, "phone": R, "postal_address": R}
SUPPORT |= {"iban": M, "card": M, "notes": R}
SUPPORT_BILLING = {"given_name": M, "family_name": M, "iban": R, "card": M}
BILLING = {"given_name": R, "family_name": R, "email": R, "iban": R, "card": M}
BILLING_MASKED = BILLING | {"iban": M}
ANALYST = {"given_name": R, "family_name": R, "birth_date": R, "email": M, "phone": M, "iban": M, "card": M}
PRIVACY = dict.fromkeys(CATEGORY, R)
NOTHING: dict[str, str] = {}
# role: (share of staff, at least, median customers viewed a day, share of views that are searches)
ROLES = {
    "privacy_officer": (0.03, 3, 12, 0.5),
    "analyst": (0.08, 5, 25, 0.2),
    "billing_clerk": (0.14, 6, 30, 0.4),
    "support_agent": (1.0, 1, 40, 0.3),  # the rest
}
SEARCHES = {
    "support_agent": ["email lookup"] * 60 + ["phone lookup"] * 35 + ["iban lookup"] * 3 + ["card lookup"] * 2,
    "billing_clerk": ["email lookup"] * 60 + ["iban lookup"] * 35 + ["card lookup"] * 5,
    "analyst": ["email lookup"] * 70 + ["phone lookup"] * 30,
    "privacy_officer": ["email lookup"] * 90 + ["phone lookup"] * 10,
}
RATES = {
    "no_ticket": 0.01,  # a support agent or billing clerk forgets the ticket (per view)
    "support_billing": 0.02,  # a support agent works a billing ticket: IBAN revealed (per view)
    "billing_iban": 0.6,  # a billing clerk's view reveals the IBAN (per view)
    "denied": 0.01,  # a view refused for its purpose (per view)
    "found": 0.9,  # a search finds its customer (per search)
    "update": 0.1,  # a view followed by a change (per support or billing view)
    "personal_busy": 0.05,  # a busy day of one's own, 1.3-1.8x the views (per day)
    "overtime": 0.05,  # a few views in the hour after the shift (per day)
    "early": 0.03,  # a view two hours before the shift (per day)
    "analyst_export": 0.04,  # an export of 50-600 rows (per analyst day)
    "dsr_export": 0.4,  # one customer's export for a data-subject request (per privacy officer day)
    "break_glass": 0.01,  # a legitimate break-glass (per privacy officer day)
    "absent": 0.05,  # ill or on leave (per day)
    "night_shift": 0.05,  # a support agent on the 22:00 shift (per person)
    "rota": 0.4,  # a support agent with two days off anywhere in the week (per person)
    "card_found": 0.3,  # a card-hunting search finds someone
}


@dataclass(frozen=True)
class Staff:
    actor: str
    role: str
    start: int  # shift start, UTC hour
    length: int  # shift hours
    level: float  # median customers viewed on a working day
    off: frozenset[int]  # weekdays off (0 = Monday)


@dataclass(frozen=True)
class Dataset:
    activities: list[Activity]  # in time order
    insiders: frozenset[tuple[str, date]]  # the labelled (actor, day) pairs
    scenarios: Mapping[str, frozenset[tuple[str, date]]]  # scenario -> its (actor, day) pairs
    staff: tuple[Staff, ...]
    days: tuple[date, ...]


def _categories(returned: Mapping[str, str]) -> frozenset[str]:
    return frozenset(CATEGORY[f] for f, how in returned.items() if how != "withheld")


class _Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.out: list[Activity] = []
        self._shown = {id(t): _categories(t) for t in (SUPPORT, SUPPORT_BILLING, BILLING, BILLING_MASKED, ANALYST)}
        self._shown |= {id(PRIVACY): _categories(PRIVACY), id(NOTHING): frozenset()}

    def event(
        self,
        person: Staff,
        day: date,
        hour: int,
        verb: str,
        returned: Mapping[str, str],
        purpose: str | None,
        ticket: str | None,
        *,
        outcome: str | None = None,
        search_kind: str | None = None,
        count: int = 1,
    ) -> None:
        """One entry; the outcome follows from what was returned unless given. Hours wrap within the day."""
        second = int(self.rng.random() * 3600)
        at = datetime(day.year, day.month, day.day, hour % 24, second // 60, second % 60, tzinfo=UTC)
        outcome = outcome or ("revealed" if R in returned.values() else M if returned else "ok")
        categories = self._shown.get(id(returned))  # the templates' categories, worked out once
        if categories is None:
            categories = _categories(returned)
        self.out.append(
            Activity(person.actor, person.role, at, f"api:customer:{verb}", outcome, categories, returned, purpose,
                     ticket, search_kind, count)
        )  # fmt: skip

    def hour(self, person: Staff) -> int:
        return person.start + int(self.rng.random() * person.length)

    def ticket(self, person: Staff) -> str | None:
        if person.role == "analyst" or self.rng.random() < RATES["no_ticket"]:  # analysts work without tickets
            return None
        return f"{'DSR' if person.role == 'privacy_officer' else 'T'}-{int(self.rng.random() * 100_000)}"

    def template(self, person: Staff) -> tuple[Mapping[str, str], str]:
        """What a view returns, and its purpose."""
        chance = self.rng.random()
        if person.role == "support_agent":
            return (SUPPORT_BILLING, "billing") if chance < RATES["support_billing"] else (SUPPORT, "support")
        if person.role == "billing_clerk":
            return BILLING if chance < RATES["billing_iban"] else BILLING_MASKED, "billing"
        if person.role == "analyst":
            return ANALYST, "marketing" if chance < 1 / 3 else "fraud_prevention"
        return PRIVACY, "privacy_request"

    def view(self, person: Staff, day: date, hour: int) -> None:
        rng = self.rng
        returned, purpose = self.template(person)
        ticket = self.ticket(person)
        if rng.random() < RATES["denied"]:  # asked under a purpose the policy refuses
            self.event(person, day, hour, "read", NOTHING, "marketing", ticket, outcome="denied", count=0)
        elif rng.random() < ROLES[person.role][3]:
            kind = rng.choice(SEARCHES[person.role])
            found = rng.random() < RATES["found"]
            self.event(person, day, hour, "search", returned if found else NOTHING, purpose, ticket, search_kind=kind,
                       count=int(found))  # fmt: skip
        else:
            self.event(person, day, hour, "read", returned, purpose, ticket)
        if person.role in {"support_agent", "billing_clerk"} and rng.random() < RATES["update"]:
            self.event(person, day, hour, "update", NOTHING, purpose, ticket, outcome="ok")

    def workday(self, person: Staff, day: date, busy: float) -> None:
        rng = self.rng
        factor = busy * (rng.uniform(1.3, 1.8) if rng.random() < RATES["personal_busy"] else 1.0)
        for _ in range(max(0, round(person.level * factor * rng.gauss(1, 0.15)))):
            self.view(person, day, self.hour(person))
        if rng.random() < RATES["overtime"]:
            for _ in range(rng.randint(1, 3)):
                self.view(person, day, person.start + person.length)
        if rng.random() < RATES["early"]:
            self.view(person, day, person.start - 2)
        if person.role == "analyst" and rng.random() < RATES["analyst_export"]:
            self.event(person, day, self.hour(person), "export", ANALYST, "fraud_prevention", None,
                       outcome="ok", count=rng.randint(50, 600))  # fmt: skip
        if person.role == "privacy_officer":
            if rng.random() < RATES["dsr_export"]:
                self.event(person, day, self.hour(person), "export", PRIVACY, "privacy_request", self.ticket(person))
            if rng.random() < RATES["break_glass"]:
                self.event(person, day, self.hour(person), "break-glass", PRIVACY, "privacy_request", None)


def _staff(rng: random.Random, count: int) -> list[Staff]:
    sizes = {role: max(least, round(share * count)) for role, (share, least, _, _) in ROLES.items()}
    sizes["support_agent"] = count - sum(n for role, n in sizes.items() if role != "support_agent")
    people: list[Staff] = []
    for role, size in sizes.items():
        for _ in range(size):
            if role == "support_agent":
                start = 22 if rng.random() < RATES["night_shift"] else rng.choice([6, 7, 7, 8, 8, 9, 9, 10, 12, 13, 14])
                off = frozenset(rng.sample(range(7), 2) if rng.random() < RATES["rota"] else (5, 6))
            else:
                start, off = rng.choice([7, 8, 8, 9]), frozenset((5, 6))
            level = ROLES[role][2] * math.exp(rng.gauss(0, 0.3))
            people.append(Staff(f"staff:{len(people) + 1:04d}", role, start, 9 if role == "analyst" else 8, level, off))
    return people


def _ticket(g: _Generator) -> str:
    return f"T-{g.rng.randrange(100_000)}"


def _card_hunt(g: _Generator, person: Staff, day: date) -> None:
    """A support agent looking up card numbers, mostly finding nobody."""
    ticket = _ticket(g)
    for _ in range(g.rng.randint(12, 25)):
        found = g.rng.random() < RATES["card_found"]
        g.event(person, day, g.hour(person), "search", SUPPORT if found else NOTHING, "support", ticket,
                search_kind="card lookup", count=int(found))  # fmt: skip


def _mass_export(g: _Generator, person: Staff, day: date) -> None:
    g.event(person, day, g.hour(person), "export", ANALYST, "marketing", None, outcome="ok",
            count=g.rng.randint(3000, 9000))  # fmt: skip


def _off_hours(g: _Generator, person: Staff, day: date) -> None:
    """Browsing customers in the middle of one's own night, under a real ticket."""
    awake = {(person.start + h) % 24 for h in range(-3, person.length + 3)}
    hour, ticket = g.rng.choice([h for h in range(24) if h not in awake]), _ticket(g)
    for _ in range(g.rng.randint(20, 40)):
        g.event(person, day, hour + g.rng.randrange(2), "read", SUPPORT, "support", ticket)


def _read_spike(g: _Generator, person: Staff, day: date) -> None:
    """Many customers in working hours, without tickets."""
    for _ in range(g.rng.randint(150, 250)):
        g.event(person, day, g.hour(person), "read", SUPPORT, "support", None)


def _iban_peer(g: _Generator, person: Staff, day: date) -> None:
    """A support agent revealing IBANs under the billing purpose (which the policy allows), unlike peers."""
    ticket = _ticket(g)
    for _ in range(g.rng.randint(20, 35)):
        g.event(person, day, g.hour(person), "read", SUPPORT_BILLING, "billing", ticket)


def _break_glass(g: _Generator, person: Staff, day: date) -> None:
    for _ in range(g.rng.randint(3, 6)):
        g.event(person, day, g.hour(person), "break-glass", PRIVACY, "privacy_request", None)


def _billing_harvest(g: _Generator, person: Staff, day: date) -> None:
    """A billing clerk looking up and revealing far more IBANs than usual, within what the rules allow."""
    ticket = _ticket(g)
    for _ in range(g.rng.randint(25, 40)):
        g.event(person, day, g.hour(person), "search", BILLING, "billing", ticket, search_kind="iban lookup")


# name: (the insider's role, days, one day of it)
SCENARIOS: dict[str, tuple[str, int, Callable[[_Generator, Staff, date], None]]] = {
    "card_hunt": ("support_agent", 2, _card_hunt),
    "mass_export": ("analyst", 2, _mass_export),
    "off_hours": ("support_agent", 2, _off_hours),
    "read_spike": ("support_agent", 3, _read_spike),
    "iban_peer": ("support_agent", 2, _iban_peer),
    "break_glass": ("privacy_officer", 2, _break_glass),
    "billing_harvest": ("billing_clerk", 2, _billing_harvest),
}


def _insiders(g: _Generator, people: list[Staff], days: list[date]) -> dict[str, frozenset[tuple[str, date]]]:
    """Each scenario by its own person, on top of their ordinary work, on days drawn from `days`."""
    taken: set[str] = set()
    scenarios = {}
    for name, (role, count, act) in SCENARIOS.items():
        person = g.rng.choice([p for p in people if p.role == role and p.actor not in taken])
        taken.add(person.actor)
        on = sorted(g.rng.sample(days, count))
        for day in on:
            act(g, person, day)
        scenarios[name] = frozenset((person.actor, day) for day in on)
    return scenarios


def generate(
    seed: int = 7, staff: int = 200, days: int = 30, insider_from: int = 15, start: date = date(2025, 3, 3)
) -> Dataset:
    """`staff` people over `days` days from `start`; insiders act only on days `insider_from` and later, so the
    days before are clean history. The same arguments give the same activities, in time order."""
    g = _Generator(random.Random(seed))  # noqa: S311  # reproducible test data, not secrets
    people = _staff(g.rng, staff)
    calendar = [start + timedelta(days=n) for n in range(days)]
    team_busy = set(g.rng.sample(calendar, max(1, days // 15)))
    for day in calendar:
        busy = g.rng.uniform(1.4, 1.6) if day in team_busy else 1.0
        for person in people:
            if day.weekday() not in person.off and g.rng.random() >= RATES["absent"]:
                g.workday(person, day, busy)
    scenarios = _insiders(g, people, calendar[insider_from:])
    g.out.sort(key=lambda a: a.at)
    insiders = frozenset(pair for pairs in scenarios.values() for pair in pairs)
    return Dataset(g.out, insiders, scenarios, tuple(people), tuple(calendar))
