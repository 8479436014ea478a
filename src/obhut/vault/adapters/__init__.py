"""Key providers: one module per engine, each implementing `obhut.vault.ports.KeyProvider`."""
