"""The synthetic staff activity behind bench_detect.py, summarised: staff per role, entries per action, and the
injected insiders. The generator itself is obhut.audit.synthetic (pure and deterministic), so the tests use it
too; this script only shows what it makes."""

from __future__ import annotations

import argparse
from collections import Counter

from obhut.audit.synthetic import Dataset, generate

__all__ = ["Dataset", "generate"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--staff", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    data = generate(args.seed, staff=args.staff, days=args.days)
    print(f"{len(data.activities):,} entries, {len(data.staff)} staff, {data.days[0]} to {data.days[-1]}")
    roles = Counter(person.role for person in data.staff)
    print("staff: " + ", ".join(f"{role} {n}" for role, n in roles.most_common()))
    actions = Counter(a.action for a in data.activities)
    print("entries: " + ", ".join(f"{action} {n:,}" for action, n in actions.most_common()))
    for scenario, pairs in data.scenarios.items():
        days = ", ".join(str(day) for _, day in sorted(pairs))
        print(f"insider {scenario:<16} {next(iter(pairs))[0]}  {days}")


if __name__ == "__main__":
    main()
