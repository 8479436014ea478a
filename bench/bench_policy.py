"""Policy decisions in process (50 roles, 500 rules) against PyCasbin deciding the same rules in the same
run, and the cost of masking: a support agent's masked read against the owner's unmasked read."""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import casbin

from common import WORKSPACE, container, databases
from obhut.access.policies import FIELD_CATEGORIES
from obhut.access.rules import ALL_PERMISSIONS, CompiledPolicy, Effect, MaskStyle, Rule
from obhut.access.service import Principal
from obhut.kit.db import unit_of_work

ROLES, RULES, DECISIONS, READS = 50, 500, 200_000, 10_000
PURPOSES = ["support", "billing", "fraud_prevention", "marketing", "privacy_request"]
CASBIN_MODEL = """
[request_definition]
r = sub, obj, purpose
[policy_definition]
p = sub, obj, purpose, eft
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = r.sub == p.sub && (p.obj == "*" || r.obj == p.obj) && (p.purpose == "*" || r.purpose == p.purpose)
"""


def make_rules(rng: random.Random) -> list[Rule]:
    fields = list(FIELD_CATEGORIES)
    targets = ["*", *(f"field:{f}" for f in fields), *(f"category:{c}" for c in set(FIELD_CATEGORIES.values()))]
    return [
        Rule(
            f"role{rng.randrange(ROLES)}",
            rng.choice(targets),
            rng.choice(["*", *PURPOSES]),
            rng.choice(list(Effect)),
            rng.choice(list(MaskStyle)),
        )
        for _ in range(RULES)
    ]


def timed(call: Callable[[int], object], queries: list[tuple[str, str, str]], count: int) -> tuple[float, float, float]:
    """Decisions per second over a tight loop, and p50/p99 in µs of individually timed calls."""
    start = time.perf_counter()
    for n in range(count):
        call(n % len(queries))
    rate = count / (time.perf_counter() - start)
    samples = []
    for n in range(min(count, 20_000)):
        begin = time.perf_counter_ns()
        call(n % len(queries))
        samples.append((time.perf_counter_ns() - begin) / 1000)
    cuts = statistics.quantiles(samples, n=100)
    return rate, cuts[49], cuts[98]


def decisions() -> None:
    rng = random.Random(7)
    rules = make_rules(rng)
    started = time.perf_counter()
    policy = CompiledPolicy(1, rules, FIELD_CATEGORIES, PURPOSES)
    compile_ms = (time.perf_counter() - started) * 1000
    queries = [
        (f"role{rng.randrange(ROLES)}", rng.choice(list(FIELD_CATEGORIES)), rng.choice(PURPOSES)) for _ in range(4096)
    ]
    enforcer = casbin.Enforcer(_model())
    for rule in rules:  # casbin knows fields, not categories: the category rules are expanded to fields
        objs = [f for f, c in FIELD_CATEGORIES.items() if rule.target == f"category:{c}"] or [
            rule.target.removeprefix("field:")
        ]
        for obj in objs:
            eft = "allow" if rule.effect is not Effect.DENY else "deny"
            enforcer.add_policy(rule.role, obj, rule.purpose, eft)
    ours = timed(lambda n: policy.decide(*queries[n]), queries, DECISIONS)
    theirs = timed(lambda n: enforcer.enforce(*queries[n]), queries, 5_000)
    print(
        f"policy decisions, {ROLES} roles, {RULES} rules (compiled in {compile_ms:.1f} ms); "
        "target >= 200,000/s, p99 < 20 µs"
    )
    print(f"{'':<4}{'engine':<12}{'decisions/s':>14}{'p50 µs':>10}{'p99 µs':>10}")
    for name, (rate, p50, p99) in (("obhut", ours), ("pycasbin", theirs)):
        print(f"{'':<4}{name:<12}{rate:>14,.0f}{p50:>10.2f}{p99:>10.2f}")


def _model() -> casbin.model.Model:
    model = casbin.model.Model()
    model.load_model_from_text(CASBIN_MODEL)
    return model


def customer(n: int) -> dict[str, object]:
    """An invented customer with every kind of field (reserved domain, test IBAN and card)."""
    return {
        "external_ref": f"B-{n}",
        "given_name": "Jane",
        "family_name": "Musterfrau",
        "birth_date": "1985-04-12",
        "email": f"b{n}@example.com",
        "phone": "+49 30 901820",
        "postal_address": {"line1": "Zwiebelgasse 7", "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "iban": "DE89370400440532013000",
        "card_number": "4111111111111111",
        "notes": "Prefers email contact",
    }


def masked_reads(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, databases("sqlite", Path(tmp)) as settings, container(settings) as built:
        with unit_of_work(built.sessions) as session:
            ids = [built.customers.create(session, WORKSPACE, customer(n)).id for n in range(count)]
        plans = {}
        with unit_of_work(built.sessions) as session:
            for role in ("owner", "support_agent"):
                principal = Principal(WORKSPACE, "bench", role, ALL_PERMISSIONS, frozenset({"mfa"}))
                plans[role] = built.policies.plan(session, principal, "support", None)

        def read(role: str, n: int) -> float:
            start = time.perf_counter()
            with unit_of_work(built.sessions) as session:
                built.customers.view(session, WORKSPACE, ids[n % count], plans[role])
            return (time.perf_counter() - start) * 1000

        for n in range(500):  # warm-up
            read("owner", n), read("support_agent", n)
        samples: dict[str, list[float]] = {"owner": [], "support_agent": []}
        for n in range(READS):  # alternating, so both see the same machine noise
            for role in ("owner", "support_agent") if n % 2 else ("support_agent", "owner"):
                samples[role].append(read(role, n))
        figures = {}
        for role, values in samples.items():
            cuts = statistics.quantiles(values, n=100)
            figures[role] = (cuts[49], cuts[98])
    print(f"read one customer with masking (SQLite, {count:,} stored, ms); target: masked <= 1.3x unmasked")
    for role, label in (("owner", "owner, unmasked"), ("support_agent", "support agent, masked")):
        print(f"{'':<4}{label:<24} p50 {figures[role][0]:.3f}  p99 {figures[role][1]:.3f}")
    print(
        f"{'':<4}ratio masked/unmasked: p50 {figures['support_agent'][0] / figures['owner'][0]:.2f}, "
        f"p99 {figures['support_agent'][1] / figures['owner'][1]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args()
    decisions()
    masked_reads(args.customers)


if __name__ == "__main__":
    main()
