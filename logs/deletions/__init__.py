"""Deletion requests (issue 15): an owner asks for some of the account's logs to go before
their retention period ends, an operator approves or rejects it, a worker carries it out in
batches; every step is recorded in an append-only audit trail (DeletionEvent)."""
