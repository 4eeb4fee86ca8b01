"""Who may do what: bearer tokens, site-scoped roles, one permission table."""
