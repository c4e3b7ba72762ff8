"""Shared layer of the webhook platform: everything the three Lambda functions share.

The handlers in ``functions/`` stay thin; the logic lives here, one folder per area:

- ``config``: settings read once from the environment and validated
- ``errors``: the layer's typed errors (the API maps each to a status)
- ``models``: pydantic models at the boundaries (API input, queue messages, webhook body);
  ``json_stringify``: the webhook body's data as the Node service's JSON.stringify wrote it
- ``observability``: the Powertools logger, metrics and tracer; ``log_format``: human log lines
- ``queues``: SQS clients, the small queue interface the core uses, the loop bounds
- ``ingest/``: the events route's core (the ingest function): JSON input, auth, idempotency,
  the event type catalog, enqueueing envelopes
- ``dispatch/``: the dispatch function's core, fanning envelopes out to deliveries
- ``delivery/``: the deliver function's core: policy, flow control, the signed SSRF-guarded
  POST, backoff, rate limits, endpoint health, parked deliveries, the delivery DLQ
- ``partners/``: partners and subscriptions: the model, the store and its cache, URLs,
  credentials, the failed-credential throttle, portal tokens
- ``endpoints/``: a partner's endpoints (the first is the partner's own document): the model
  and the store
- ``store/``: MongoDB: the client, indexes, migration, the delivery log, the event store, stats
- ``services/``: the service layer under the HTTP API and the CLI
- ``api/``: the HTTP API (Powertools resolver, one router per area); ``console/``: its web console
"""

__version__ = "0.1.0"
