"""Suspicious-access detection on synthetic staff activity with labelled insiders (obhut.audit.synthetic):
insider-days flagged and false alerts for our detectors (rules + own baseline + peer baseline, and each alone)
beside a naive detector from the same run: a z-score over all staff of the day, without floors or roles."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Collection, Iterable, Sequence
from datetime import date

from obhut.audit.detectors import FEATURES, Alert, DailyFeatures, daily_features, detect
from obhut.audit.synthetic import Dataset, generate

NAIVE_Z = 3.0


def naive(rows: Iterable[DailyFeatures], days: Collection[date]) -> set[tuple[str, date]]:
    """Flags a person-day when any feature is more than NAIVE_Z standard deviations above that day's mean over
    all active staff: no roles, no history, no floors."""
    by_day: dict[date, list[DailyFeatures]] = {}
    for row in rows:
        if row.day in days:
            by_day.setdefault(row.day, []).append(row)
    flagged = set()
    for group in by_day.values():
        for feature in FEATURES:
            values = [r.counts[feature] for r in group]
            mean, deviation = statistics.fmean(values), statistics.pstdev(values)
            flagged |= {
                (r.actor, r.day) for r in group if deviation and (r.counts[feature] - mean) / deviation > NAIVE_Z
            }
    return flagged


def figures(flagged: set[tuple[str, date]], data: Dataset, staff_days: int) -> tuple[int, int, float]:
    caught = len(flagged & data.insiders)
    false = len(flagged - data.insiders)
    return caught, false, 100 * false / staff_days


def by_detector(alerts: Sequence[Alert], name: str | None) -> set[tuple[str, date]]:
    return {(a.actor, a.day) for a in alerts if name is None or name in a.detectors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--staff", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--evaluate", type=int, default=15, help="the last N days are evaluated; the rest is history")
    args = parser.parse_args()

    started = time.perf_counter()
    data = generate(args.seed, staff=args.staff, days=args.days, insider_from=args.days - args.evaluate)
    generated = time.perf_counter() - started
    evaluated = data.days[-args.evaluate :]
    started = time.perf_counter()
    alerts = detect(data.activities, evaluated)
    took = time.perf_counter() - started
    rows = daily_features(data.activities)
    window = set(evaluated)
    staff_days = sum(1 for r in rows if r.day in window)  # active person-days evaluated
    baseline = naive(rows, window)

    total = len(data.insiders)
    print(
        f"suspicious-access detection: {args.staff} staff, {args.days} days, last {args.evaluate} evaluated "
        f"({staff_days:,} active staff-days, {len(data.activities):,} entries, seed {args.seed}); "
        "target >= 90 % insider-days flagged, <= 2 false alerts per 100 staff-days"
    )
    print(f"{'':<4}{'detector':<34}{'insider-days':>14}{'false alerts':>14}{'per 100 staff-days':>20}")
    runs = [
        ("obhut: rules + own + peer", by_detector(alerts, None)),
        ("  rules alone", by_detector(alerts, "rules")),
        ("  own baseline alone", by_detector(alerts, "self")),
        ("  peer baseline alone", by_detector(alerts, "peer")),
        (f"naive: global z > {NAIVE_Z:g}, no floors", baseline),
    ]
    for name, flagged in runs:
        caught, false, rate = figures(flagged, data, staff_days)
        print(f"{'':<4}{name:<34}{f'{caught}/{total} ({100 * caught / total:.0f} %)':>14}{false:>14}{rate:>20.2f}")
    ours = by_detector(alerts, None)
    print(f"{'':<4}per scenario (insider-days caught: obhut / naive)")
    for scenario, pairs in data.scenarios.items():
        actor = next(iter(pairs))[0]
        print(
            f"{'':<8}{scenario:<18}{actor:<12}{len(pairs & ours)}/{len(pairs)}  /  {len(pairs & baseline)}/{len(pairs)}"
        )
    severities = {s: sum(1 for a in alerts if a.severity == s) for s in ("high", "medium", "low")}
    print(f"{'':<4}alerts by severity: " + ", ".join(f"{s} {n}" for s, n in severities.items()))
    print(
        f"{'':<4}time: detect {took:.2f} s ({1e6 * took / len(data.activities):.1f} µs an entry), "
        f"generate {generated:.2f} s"
    )


if __name__ == "__main__":
    main()
