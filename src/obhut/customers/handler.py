"""The customer profile's answer to data-subject requests: every field decrypted for an export; on erasure
the data key is shredded (crypto-shredding: no copy of the database can decrypt the fields any more), or,
where a retention duty keeps some categories, only the other fields' ciphertext is dropped."""

from __future__ import annotations

from typing import Any

from obhut.customers import repository
from obhut.customers.rules import FIELDS
from obhut.customers.service import CustomerService
from obhut.kit.errors import NotFoundError
from obhut.rights.ports import Batch, Kept, Outcome, Retained, Subject


class CustomerHandler:
    domain = "customers"
    tables = frozenset({"customers", "vault_data_keys", "vault_shredded"})

    def __init__(self, customers: CustomerService) -> None:
        self._customers = customers

    def export(self, subject: Subject) -> dict[str, Any]:
        record = self._customers.get(subject.session, subject.workspace_id, subject.customer_id, subject.keyring)
        row = repository.get(subject.session, subject.workspace_id, subject.customer_id)
        assert row is not None  # `get` found it
        return {
            "id": record.id,
            "fields": {name: value for name, value in record.values.items() if value is not None},
            "categories": {name: spec.category.value for name, spec in FIELDS.items()},
            "created_at": record.created_at.isoformat(),
            "updated_at": record.updated_at.isoformat(),
            "contract_ended_at": row.contract_ended_at.isoformat() if row.contract_ended_at else None,
        }

    def erase_all(self, batch: Batch) -> None:
        self._customers.shred_many(batch.session, batch.workspace_id, batch.customer_ids, rows_go=batch.rows_go)

    def erase(self, subject: Subject, retained: Retained) -> Outcome:
        session, workspace_id, customer_id = subject.session, subject.workspace_id, subject.customer_id
        row = repository.get(session, workspace_id, customer_id)
        if row is None:
            raise NotFoundError(f"no customer {customer_id} in workspace '{workspace_id}'")
        present = [name for name in FIELDS if getattr(row, name) is not None]
        keep = [name for name in present if FIELDS[name].category.value in retained.categories]
        if not keep:
            self._customers.shred(session, workspace_id, customer_id)
            return Outcome(self.domain, erased=[*present, "data key (shredded)"])
        gone = [name for name in present if name not in keep]
        self._customers.clear(session, workspace_id, customer_id, gone)
        kept_fields: dict[str, list[str]] = {}
        for name in keep:
            kept_fields.setdefault(FIELDS[name].category.value, []).append(name)
        kept = [
            Kept(
                f"{category} data ({', '.join(names)})",
                retained.categories[category].why,
                retained.categories[category].until,
            )
            for category, names in kept_fields.items()
        ]
        return Outcome(self.domain, erased=gone, kept=kept)
