"""Keys and encryption: key hierarchy, envelope encryption, blind indexes, rotation, revocation, shredding."""
