"""The access log: who saw which personal data, in a tamper-evident Merkle log."""
