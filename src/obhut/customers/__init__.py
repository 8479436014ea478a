"""Customer profiles: typed personal fields, each with a data category, stored as vault ciphertext only."""
