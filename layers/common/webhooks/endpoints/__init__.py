"""A partner's endpoints: where its webhooks go, each with its own URL, event types, filter,
signing secret, headers, retry schedule, rate limit and health.

- ``model``: :class:`Endpoint` as the code sees it, and how a stored document is read
- ``store``: :class:`EndpointStore`, the endpoints in MongoDB (the first one is the partner's
  own document, so the Node service's documents need no copy and no migration)
"""
