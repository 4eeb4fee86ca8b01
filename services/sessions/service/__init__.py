"""Sessions' use cases: each one transaction, with its audit entry and its events written to the outbox inside."""
