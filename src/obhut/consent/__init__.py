"""Consent: the purpose catalogue, versioned notices, the tamper-evident ledger, receipts, enforcement."""
