"""Search by name through the family name's blind index, on SQLite and PostgreSQL: spellings that mean one
name find each other, given names narrow the search, the log keeps the kind of search and not the name, a role
that may not see names may not search by them, and customers stored before the index get it from `reindex`."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from obhut.audit.models import AuditEntry
from obhut.container import Container
from obhut.customers import tasks
from obhut.customers.models import Customer
from obhut.kit.db import unit_of_work
from tests.access.staff import add_staff, bearer, login
from tests.conftest import WORKSPACE, jane

CUSTOMERS = f"/api/v1/workspaces/{WORKSPACE}/customers"
LOOKUP = f"{CUSTOMERS}/lookup"
PEOPLE = {
    "anna": ("Anna Maria", "Müller"),
    "jonas": ("Jonas", "Mueller"),
    "grete": ("Grete", "von Beispiel"),
    "lena": ("Lena", "Müller-Lüdenscheidt"),
}


@pytest.fixture
def people(client: TestClient) -> dict[str, str]:
    """Invented customers with names that fold alike or not; their ids by first name."""
    client.params = httpx2.QueryParams(purpose="support")
    ids = {}
    for n, (key, (given, family)) in enumerate(PEOPLE.items()):
        body = jane(external_ref=f"K-{n}", given_name=given, family_name=family, email=f"{key}@example.com")
        response = client.post(CUSTOMERS, json=body)
        assert response.status_code == 201, response.text
        ids[key] = response.json()["id"]
    return ids


def found(client: TestClient, term: str, **headers: str) -> set[str]:
    response = client.post(LOOKUP, json={"name": term}, headers=headers)
    assert response.status_code == 200, response.text
    return {c["id"] for c in response.json()["customers"]}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("müller", {"anna", "jonas"}),  # Müller and Mueller are one name in German
        ("MUELLER", {"anna", "jonas"}),
        ("Anna Müller", {"anna"}),  # the given name's first word narrows it
        ("anna maria mueller", {"anna"}),
        ("Maria Müller", set()),  # not the first given name
        ("von Beispiel", {"grete"}),
        ("Grete von Beispiel", {"grete"}),
        ("Beispiel", set()),  # a family name is searched whole
        ("Lena Müller Lüdenscheidt", {"lena"}),  # a hyphen or a space
        ("Muller", set()),  # ü is ue, not u
    ],
)
def test_spellings_and_given_names(client: TestClient, people: dict[str, str], term: str, expected: set[str]) -> None:
    assert found(client, term) == {people[key] for key in expected}


def test_the_log_records_a_name_search_without_the_name(
    client: TestClient, container: Container, people: dict[str, str]
) -> None:
    found(client, "Anna Müller")
    entries = client.get(f"/api/v1/workspaces/{WORKSPACE}/audit/entries", params={"action": "api:customer:search"})
    assert [(e["search_kind"], e["outcome"]) for e in entries.json()] == [("name lookup", "revealed")]
    with unit_of_work(container.sessions) as session:
        stored = b"".join(repr(row.__dict__).encode() for row in session.scalars(select(AuditEntry)))
    assert "Müller".encode() not in stored
    assert b"Anna" not in stored


def test_a_role_that_may_not_see_names_may_not_search_by_them(
    client: TestClient, container: Container, people: dict[str, str]
) -> None:
    add_staff(container, "analyst@example.com", "analyst")
    token = login(client, "analyst@example.com")["token"]
    refused = client.post(LOOKUP, json={"name": "Müller"}, headers=bearer(token))
    assert refused.status_code == 403
    assert "may not search customers by name" in refused.json()["detail"]


@pytest.mark.parametrize("term", ["", "eins zwei drei vier fünf sechs sieben"])
def test_an_empty_or_overlong_name_is_a_field_problem(client: TestClient, term: str) -> None:
    response = client.post(LOOKUP, json={"name": term})
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/name"]


def _forget_index(container: Container) -> None:
    """Customers as an upgrade finds them: stored before the family name had an index."""
    with unit_of_work(container.sessions) as session:
        session.execute(update(Customer).values(family_name_index=None))


def test_reindex_makes_customers_stored_before_the_index_searchable(
    client: TestClient, container: Container, people: dict[str, str]
) -> None:
    _forget_index(container)
    assert found(client, "Müller") == set()
    seen: list[tuple[int, int]] = []
    done = tasks.reindex(
        container.vault, container.sessions, WORKSPACE, batch_size=3, progress=lambda *done: seen.append(done)
    )
    assert done == len(PEOPLE)
    assert seen == [(3, 4), (4, 4)]  # batches commit one after the other
    assert found(client, "Müller") == {people["anna"], people["jonas"]}
    assert tasks.reindex(container.vault, container.sessions, WORKSPACE) == 0  # nothing left: a rerun is a no-op


def test_the_background_job_indexes_every_workspace_once(
    client: TestClient, container: Container, people: dict[str, str]
) -> None:
    _forget_index(container)
    job = tasks.Reindexer(container.vault, container.sessions)
    assert job() == len(PEOPLE)
    assert job.complete
    _forget_index(container)
    assert job() == 0  # done once: later passes cost nothing (new customers are indexed when written)
    assert found(client, "Grete von Beispiel") == set()


def test_an_update_keeps_the_index_in_step(client: TestClient, people: dict[str, str]) -> None:
    changed = client.patch(f"{CUSTOMERS}/{people['jonas']}", json={"family_name": "Beispiel"})
    assert changed.status_code == 200, changed.text
    assert found(client, "Mueller") == {people["anna"]}
    assert found(client, "Jonas Beispiel") == {people["jonas"]}
    cleared: Any = client.patch(f"{CUSTOMERS}/{people['jonas']}", json={"family_name": None})
    assert cleared.status_code == 200, cleared.text
    assert found(client, "Beispiel") == set()


def test_a_role_that_may_not_see_given_names_searches_the_whole_term_as_a_family_name(
    client: TestClient, container: Container, people: dict[str, str]
) -> None:
    rules = client.get(f"/api/v1/workspaces/{WORKSPACE}/policy").json()["rules"]
    rules.append({"role": "analyst", "target": "field:family_name", "purpose": "*", "effect": "mask"})
    assert client.put(f"/api/v1/workspaces/{WORKSPACE}/policy", json={"rules": rules}).status_code == 200
    add_staff(container, "analyst@example.com", "analyst")
    analyst = bearer(login(client, "analyst@example.com")["token"])
    assert found(client, "Müller", **analyst) == {people["anna"], people["jonas"]}
    assert found(client, "Anna Müller", **analyst) == set()  # no probing of given names it may not see
