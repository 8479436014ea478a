"""Suspicious-access detection over the access log, and an access review. Pure: standard library only.

Each staff member's entries are summed per UTC day into counts (customers viewed, financial fields revealed,
card/IBAN lookups, rows exported, events outside the person's usual hours, reveals without a ticket,
break-glass uses, denials). Three detectors read them: fixed rules; the person's own earlier days (median and
MAD, at least `min_history_days` of them); and the same role on the same day. Both baselines need a robust
z-score *and* an absolute excess over the median (a floor), so a person who exports once a month or reveals two
IBANs instead of none raises nothing. All findings for one person and day become one scored alert whose factors
are ordered by contribution, the largest first (Salesforce's anomaly score 0-100 with contributing factors)."""

from __future__ import annotations

import bisect
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

FINANCIAL_FIELDS = frozenset({"iban", "card"})
FINANCIAL_SEARCHES = frozenset({"iban lookup", "card lookup"})
VIEW_VERBS = frozenset({"read", "search", "break-glass"})
FEATURES = (
    "views",  # customers shown by reads, searches and break-glass
    "financial_reveals",  # IBAN and card values revealed
    "unusual_financial",  # ... of those, by a role or under a purpose that does not usually see them
    "financial_searches",  # card and IBAN lookups
    "exported_rows",
    "no_ticket_reveals",  # reveals without a ticket
    "break_glass",
    "denials",
    "off_hours",  # events outside the person's usual hours
)


@dataclass(frozen=True, slots=True)
class Activity:
    """One access-log entry, as far as detection needs it. `returned` maps field -> revealed|masked|withheld."""

    actor: str
    role: str
    at: datetime
    action: str
    outcome: str
    categories: frozenset[str] = frozenset()
    returned: Mapping[str, str] = field(default_factory=dict, hash=False)
    purpose: str | None = None
    ticket: str | None = None
    search_kind: str | None = None
    count: int = 0

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> Activity:
        """From a dict of entry columns: the stored strings ('identity contact', 'email=revealed iban=masked',
        ISO time) or already parsed values. A naive time is taken as UTC."""
        categories = row.get("categories") or ()
        returned = row.get("returned") or {}
        if isinstance(returned, str):
            returned = dict(part.split("=", 1) for part in returned.split())
        at = row["at"] if isinstance(row["at"], datetime) else datetime.fromisoformat(row["at"])
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        categories = frozenset(categories.split() if isinstance(categories, str) else categories)
        purpose, ticket, kind = (row.get(key) or None for key in ("purpose", "ticket", "search_kind"))
        count = int(row.get("count") or 0)
        return cls(row["actor"], row["role"], at, row["action"], row["outcome"], categories, dict(returned), purpose,
                   ticket, kind, count)  # fmt: skip


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds. Floors are the least excess over the median, in the feature's own unit, that may alert."""

    min_history_days: int = 7  # own active days needed before the own baseline (and own usual hours) apply
    history_days: int = 28  # own active days looked back over
    min_peers: int = 5  # active staff of the role that day needed for the peer baseline
    self_z: float = 6.0
    peer_z: float = 6.0
    min_spread: float = 1.0  # robust spread used when MAD is smaller (zero-inflated counts)
    min_ratio: float = 2.0  # and the value must be at least this multiple of the median
    min_surge: float = 1.2  # a role this much busier than usual today scales its members' own baselines
    # feature: (least excess over the own median, over the role's median); inf: not compared
    floors: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "views": (60, 150),
            "financial_reveals": (15, math.inf),  # financial roles' volumes differ person to person
            "unusual_financial": (10, 10),
            "financial_searches": (8, 15),
            "exported_rows": (1000, 1000),
            "no_ticket_reveals": (15, 15),
            "denials": (15, 15),
        }
    )
    financial_roles: frozenset[str] = frozenset({"billing_clerk", "privacy_officer"})
    financial_purposes: frozenset[str] = frozenset({"billing", "fraud_prevention", "privacy_request"})
    ticket_roles: frozenset[str] = frozenset({"support_agent", "billing_clerk"})
    search_limit: int = 5  # card/IBAN lookups a day allowed to roles outside financial_roles
    financial_search_limit: int = 60  # ... and for financial roles
    unusual_financial_limit: int = 8
    export_limit: int = 1000
    off_hours_limit: int = 5
    no_ticket_limit: int = 10
    break_glass_limit: int = 0  # rule limits are "more than": any break-glass use alerts
    default_hours: tuple[int, int] = (7, 20)  # [start, end) UTC hours until a person has history
    usual_hour_share: float = 0.2  # an hour is usual if active in it on this share of history days
    hour_margin: int = 1  # hours either side of a usual hour that count as usual too
    z_weight: float = 4.0  # a baseline factor contributes z * this, at most max_baseline
    max_baseline: float = 70.0
    high: int = 75
    medium: int = 45


@dataclass(frozen=True)
class DailyFeatures:
    actor: str
    role: str
    day: date
    counts: Mapping[str, int]
    hours: Mapping[int, int]  # UTC hour -> events


@dataclass(frozen=True)
class Factor:
    """`name` is detector:feature; `baseline` is the rule's limit or the median compared against."""

    name: str
    value: float
    baseline: float
    detail: str
    contribution: float


@dataclass(frozen=True)
class Alert:
    actor: str
    role: str
    day: date
    severity: str  # low | medium | high
    score: int  # 0-100
    factors: tuple[Factor, ...]  # largest contribution first
    detectors: tuple[str, ...]  # rules, self, peer


def _add(counts: Counter[str], config: DetectorConfig, a: Activity) -> None:
    verb = a.action.rsplit(":", 1)[-1]
    if verb in VIEW_VERBS and a.outcome in {"revealed", "masked"}:
        counts["views"] += 1
    financial = sum(1 for f in FINANCIAL_FIELDS if a.returned.get(f) == "revealed")
    counts["financial_reveals"] += financial
    if a.role not in config.financial_roles or a.purpose not in config.financial_purposes:
        counts["unusual_financial"] += financial
    counts["financial_searches"] += a.search_kind in FINANCIAL_SEARCHES
    counts["exported_rows"] += a.count if verb == "export" else 0
    counts["no_ticket_reveals"] += a.outcome == "revealed" and a.ticket is None
    counts["break_glass"] += verb == "break-glass"
    counts["denials"] += a.outcome == "denied"


def usual_hours(history: Sequence[Mapping[int, int]], config: DetectorConfig) -> frozenset[int]:
    """The UTC hours a person usually works, from their earlier days' hour counts (with a margin either side);
    the default working day while there are fewer than `min_history_days` of them."""
    if len(history) < config.min_history_days:
        return frozenset(range(*config.default_hours))
    days_in = Counter(hour for hours in history for hour in hours)
    core = {hour for hour, n in days_in.items() if n >= config.usual_hour_share * len(history)}
    margin = range(-config.hour_margin, config.hour_margin + 1)
    return frozenset((hour + m) % 24 for hour in core for m in margin)


def daily_features(activities: Iterable[Activity], config: DetectorConfig = DetectorConfig()) -> list[DailyFeatures]:
    """Per (actor, UTC day) counts of every name in FEATURES, sorted by actor and day. A person's role on a day
    is the role of their last entry that day."""
    counts: dict[tuple[str, date], Counter[str]] = defaultdict(Counter)
    hours: dict[tuple[str, date], Counter[int]] = defaultdict(Counter)
    roles: dict[tuple[str, date], str] = {}
    for a in activities:
        at = a.at.astimezone(UTC)
        key = (a.actor, at.date())
        _add(counts[key], config, a)
        hours[key][at.hour] += 1
        roles[key] = a.role
    result: list[DailyFeatures] = []
    history: list[Mapping[int, int]] = []
    for actor, day in sorted(counts):
        if not result or result[-1].actor != actor:
            history = []
        usual = usual_hours(history[-config.history_days :], config)
        row = counts[actor, day]
        row["off_hours"] = sum(n for hour, n in hours[actor, day].items() if hour not in usual)
        result.append(DailyFeatures(actor, roles[actor, day], day, {f: row[f] for f in FEATURES}, hours[actor, day]))
        history.append(hours[actor, day])
    return result


def robust(values: Sequence[float]) -> tuple[float, float]:
    """Median and MAD scaled to a normal standard deviation (1.4826 x MAD)."""
    middle = statistics.median(values)
    return middle, 1.4826 * statistics.median(abs(v - middle) for v in values)


def _excess(value: float, middle: float, spread: float, floor: float, z_limit: float, config: DetectorConfig) -> float:
    """The robust z of value, or 0 where it is below the z limit, the floor or min_ratio x the median."""
    if value - middle < floor or value < config.min_ratio * middle:
        return 0.0
    z = (value - middle) / max(spread, config.min_spread)
    return z if z >= z_limit else 0.0


def _baseline(
    kind: str, row: DailyFeatures, stats: Mapping[str, tuple[float, float]], against: str, config: DetectorConfig
) -> list[Factor]:
    side, z_limit = (0, config.self_z) if kind == "self" else (1, config.peer_z)
    factors = []
    for feature, floors in config.floors.items():
        if feature == "no_ticket_reveals" and row.role not in config.ticket_roles:
            continue  # a role that works without tickets reveals without them
        middle, spread = stats[feature]
        z = _excess(row.counts[feature], middle, spread, floors[side], z_limit, config)
        if z:
            detail = f"{row.counts[feature]} {feature} vs {against.format(round(middle, 1))} (z {z:.1f})"
            weight = min(config.max_baseline, z * config.z_weight)
            factors.append(Factor(f"{kind}:{feature}", row.counts[feature], middle, detail, weight))
    return factors


def _rules(row: DailyFeatures, config: DetectorConfig) -> list[Factor]:
    search = config.financial_search_limit if row.role in config.financial_roles else config.search_limit
    ticketed = row.role in config.ticket_roles
    limits = {  # feature: (limit, weight, what)
        "exported_rows": (config.export_limit, 80, "rows exported"),
        "financial_searches": (search, 70, "card/IBAN lookups"),
        "unusual_financial": (config.unusual_financial_limit, 60, f"financial reveals unusual for {row.role}"),
        "off_hours": (config.off_hours_limit, 55, "events outside usual hours"),
        "no_ticket_reveals": (config.no_ticket_limit if ticketed else math.inf, 50, "reveals without a ticket"),
        "break_glass": (config.break_glass_limit, 45, "break-glass uses"),
    }
    factors = []
    for feature, (limit, weight, what) in limits.items():
        value = row.counts[feature]
        if value > limit:
            contribution = min(95.0, weight + 10 * math.log2(value / max(limit, 1)))
            factors.append(
                Factor(f"rules:{feature}", value, limit, f"{value} {what} (more than {limit})", contribution)
            )
    return factors


def _alert(row: DailyFeatures, factors: list[Factor], config: DetectorConfig) -> Alert:
    factors.sort(key=lambda f: (-f.contribution, f.name))
    score = round(100 * (1 - math.prod(1 - f.contribution / 100 for f in factors)))
    severity = "high" if score >= config.high else "medium" if score >= config.medium else "low"
    detectors = tuple(sorted({f.name.split(":", 1)[0] for f in factors}))
    return Alert(row.actor, row.role, row.day, severity, min(100, score), tuple(factors), detectors)


def _surge(
    group: Sequence[DailyFeatures], own: Mapping[str, Mapping[str, tuple[float, float]]], config: DetectorConfig
) -> float:
    """How much busier than usual the role is today: the median of its members' views over their own median,
    if at least min_surge (else 1). A team-wide busy day then scales the own baselines, so it does not alert
    half the team."""
    ratios = [r.counts["views"] / own[r.actor]["views"][0] for r in group if own.get(r.actor, {}).get("views", (0,))[0]]
    surge = statistics.median(ratios) if len(ratios) >= config.min_peers else 1.0
    return surge if surge >= config.min_surge else 1.0


def detect(
    activities: Iterable[Activity], days: Sequence[date] | None = None, config: DetectorConfig = DetectorConfig()
) -> list[Alert]:
    """One alert per (actor, day) with any finding, for the given days (default: every day present), with
    earlier days of the input as history. Sorted by day, then score (highest first)."""
    by_actor: dict[str, list[DailyFeatures]] = defaultdict(list)
    by_day: dict[date, list[DailyFeatures]] = defaultdict(list)
    for row in daily_features(activities, config):
        by_actor[row.actor].append(row)
        by_day[row.day].append(row)
    starts = {actor: [r.day for r in rows] for actor, rows in by_actor.items()}
    features = sorted({*config.floors, "views"})
    alerts = []
    for day in sorted(set(days) if days is not None else by_day):
        by_role: dict[str, list[DailyFeatures]] = defaultdict(list)
        own: dict[str, dict[str, tuple[float, float]]] = {}
        history_days: dict[str, int] = {}
        for row in by_day.get(day, []):
            by_role[row.role].append(row)
            before = bisect.bisect_left(starts[row.actor], day)
            history = by_actor[row.actor][max(0, before - config.history_days) : before]
            history_days[row.actor] = len(history)
            if len(history) >= config.min_history_days:
                own[row.actor] = {f: robust([r.counts[f] for r in history]) for f in features}
        for role, group in by_role.items():
            surge = _surge(group, own, config)
            peers = {f: robust([p.counts[f] for p in group]) for f in features}
            for row in group:
                factors = _rules(row, config)
                if row.actor in own:
                    stats = {f: (m * surge, s * surge) for f, (m, s) in own[row.actor].items()}
                    busier = f", scaled x{surge:.2f} as the team is busier today" if surge > 1 else ""
                    against = f"own median {{:g}} over {history_days[row.actor]} days{busier}"
                    factors += _baseline("self", row, stats, against, config)
                if len(group) >= config.min_peers:
                    factors += _baseline("peer", row, peers, f"{role} median {{:g}} across {len(group)} peers", config)
                if factors:
                    alerts.append(_alert(row, factors, config))
    alerts.sort(key=lambda a: (a.day, -a.score, a.actor))
    return alerts


@dataclass(frozen=True)
class Suggestion:
    role: str
    purpose: str
    field: str
    text: str


@dataclass(frozen=True)
class RoleUsage:
    """What one role did in a window: staff seen, entries per action, fields per disclosure (revealed, ...)."""

    role: str
    staff: int
    actions: Mapping[str, int]
    fields: Mapping[str, Mapping[str, int]]  # field -> {revealed|masked|withheld: entries}


def _window(activities: Iterable[Activity], days: int, today: date) -> Iterable[Activity]:
    since = today - timedelta(days=days)
    return (a for a in activities if since < a.at.astimezone(UTC).date() <= today)


def _people(role: str) -> str:
    return role.replace("_", " ") + "s"


def review(
    activities: Iterable[Activity], policy_reveals: Mapping[str, Mapping[str, Iterable[str]]], days: int, today: date
) -> list[Suggestion]:
    """For each role and purpose, the fields the policy lets it reveal that nobody revealed in the last `days`
    days up to and including `today`: candidates to mask (least privilege from use)."""
    used: dict[tuple[str, str], set[str]] = defaultdict(set)
    for a in _window(activities, days, today):
        if a.purpose is not None:
            used[a.role, a.purpose].update(f for f, how in a.returned.items() if how == "revealed")
    suggestions = []
    for role, purposes in sorted(policy_reveals.items()):
        for purpose, allowed in sorted(purposes.items()):
            for name in sorted(set(allowed) - used[role, purpose]):
                text = (
                    f"{_people(role)} revealed no {name} for {purpose} in {days} days: "
                    f"mask {name} for {_people(role)} under {purpose}"
                )
                suggestions.append(Suggestion(role, purpose, name, text))
    return suggestions


def usage(activities: Iterable[Activity], days: int, today: date) -> dict[str, RoleUsage]:
    """Per role, over the last `days` days: how many staff, entries per action, and per field how often it was
    revealed, masked or withheld."""
    staff: dict[str, set[str]] = defaultdict(set)
    actions: dict[str, Counter[str]] = defaultdict(Counter)
    fields: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for a in _window(activities, days, today):
        staff[a.role].add(a.actor)
        actions[a.role][a.action] += 1
        for name, how in a.returned.items():
            fields[a.role][name][how] += 1
    return {
        role: RoleUsage(role, len(staff[role]), dict(actions[role]), {f: dict(c) for f, c in fields[role].items()})
        for role in sorted(staff)
    }
