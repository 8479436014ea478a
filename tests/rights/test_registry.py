"""Invariant 6: erasure and export reach every domain. Every table that holds data about a customer (a
customer, subject or pseudonym column) must be covered by a handler in the one registry, so a new domain
that stores customer data cannot forget to answer export and erasure."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import obhut
from obhut.container import registry
from obhut.customers.service import CustomerService
from obhut.kit.db import Base
from obhut.rights.ports import Outcome, Retained, Subject
from obhut.rights.registry import Registry

CUSTOMER_COLUMNS = {"customer_id", "subject_id", "subject"}


def _all_models() -> None:
    for module in pkgutil.walk_packages(obhut.__path__, "obhut."):
        if module.name.endswith((".models", "_models")):
            importlib.import_module(module.name)


def tables_with_customer_data() -> set[str]:
    _all_models()
    return {
        table.name
        for table in Base.metadata.sorted_tables
        if table.name == "customers" or CUSTOMER_COLUMNS & {c.name for c in table.columns}
    }


def test_every_table_with_customer_data_has_a_handler() -> None:
    covered = registry(CustomerService(None)).covered_tables()  # type: ignore[arg-type] - no vault needed
    missing = tables_with_customer_data() - covered
    assert missing == set(), f"no subject handler exports and erases {sorted(missing)}: add one to the registry"
    assert {"customers", "consent_events", "audit_entries", "rights_requests"} <= covered


def test_every_domain_with_customer_data_has_its_handler_module() -> None:
    domains = {h.domain for h in registry(CustomerService(None))}  # type: ignore[arg-type]
    for domain in domains:
        assert (Path(obhut.__file__).parent / domain / "handler.py").exists()


def test_the_check_would_catch_a_forgotten_table() -> None:
    class Partial:
        domain = "customers"
        tables = frozenset({"customers"})

        def export(self, subject: Subject) -> dict[str, object]:
            return {}

        def erase(self, subject: Subject, retained: Retained) -> Outcome:
            return Outcome(self.domain)

    assert "consent_events" in tables_with_customer_data() - Registry([Partial()]).covered_tables()


def test_one_handler_per_domain() -> None:
    handler = registry(CustomerService(None)).__iter__().__next__()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one handler per domain"):
        Registry([handler, handler])
