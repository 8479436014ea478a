"""Who may do what. For now: the bootstrap admin tokens that guard the API until staff accounts exist."""
