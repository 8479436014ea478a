"""Invented customers for benchmarks: reserved email domain, valid-looking but made-up numbers."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

import schwifty

GIVEN = ["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Kira", "Lukas"]
FAMILY = ["Muster", "Beispiel", "Probe", "Exempel", "Test", "Platzhalter", "Fiktiv", "Erfunden"]
CITIES = [("10115", "Berlin"), ("20095", "Hamburg"), ("80331", "München"), ("50667", "Köln")]
COLUMNS = [
    "external_ref",
    "given_name",
    "family_name",
    "birth_date",
    "email",
    "phone",
    "address_line1",
    "postal_code",
    "city",
    "country",
    "iban",
    "notes",
]


def rows(count: int, seed: int = 7) -> Iterator[dict[str, str]]:
    rng = random.Random(seed)
    for n in range(count):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        postal, city = rng.choice(CITIES)
        yield {
            "external_ref": f"K-{n:08d}",
            "given_name": given,
            "family_name": family,
            "birth_date": f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "email": f"{given.lower()}.{family.lower()}.{n}@example.com",
            "phone": f"+49 30 {rng.randint(1000000, 9999999)}",
            "address_line1": f"Musterstraße {rng.randint(1, 200)}",
            "postal_code": postal,
            "city": city,
            "country": "DE",
            "iban": str(schwifty.IBAN.generate("DE", bank_code="37040044", account_code=f"{n:010d}")),
            "notes": f"Invented customer number {n} for benchmarks",
        }


def write_csv(path: Path, count: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows(count))
    return path
