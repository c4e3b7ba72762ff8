"""The events route's core (the ingest function).

- ``events_api``: :class:`EventsApi`, a request through size limit, auth, validation,
  idempotency and enqueue
- ``json_input``: the body read as I-JSON, nesting depth, validation errors as field paths
- ``enqueue``: accepted events packed into envelopes and sent atomically (:class:`Ingestor`)
- ``idempotency``: Idempotency-Key, stored in MongoDB
- ``catalog``: registered event types and their JSON Schemas
- ``schema_rules``: the catalog's JSON Schema machinery, loaded only where a schema is used
- ``regex_safety``: refusing schema patterns that backtrack catastrophically
"""
