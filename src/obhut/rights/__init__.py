"""Data-subject rights: requests (access, portability, rectification, erasure, restriction, objection),
the registry every domain that stores customer data answers through, exports, erasure certificates and
the erasure ledger that outlives backups."""
