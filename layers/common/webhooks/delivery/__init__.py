"""The deliver function's core: one attempt per delivery message (one event for one endpoint).

- ``deliverer``: :class:`Deliverer`, one attempt per message (parse, bound, admit, POST, settle)
- ``policy``: an attempt's outcome and the decisions (admit, decide, fallback, slow down)
- ``flow_control``: hold, park, defer, put back, pause, and waits longer than SQS's delay
- ``receipt``: one receive of a message, as Lambda's record describes it
- ``batch``: one invocation as a Powertools batch processor, and its rate-limit slot claims
- ``log_lines``: the short line of a delivered attempt
- ``operational_events``: the operational events (``message.attempt.exhausted``,
  ``endpoint.failing|disabled``; ``publish_operational`` for the services' others)
- ``http``: the pooled, time-boxed client that POSTs (``WebhookClient``, ``post``)
- ``ssrf``: public destinations only (``check_url``, ``is_public_address``, guarded connections)
- ``signing``: the webhook signatures (and the API key and secret generators)
- ``backoff``: exponential backoff in whole seconds, Retry-After, the visibility cap
- ``schedule``: retry schedules: an endpoint's own, bounded, and the service default
- ``rate_limit``: per-endpoint rate limits shared through MongoDB
- ``health``: endpoint health: failure streaks, the warning half way, automatic disabling
- ``parked``: deliveries parked while their endpoint is disabled
- ``dead_letters``: the delivery DLQ as an operator sees it (list, redrive)
"""
