"""Shared layer of the webhook platform: everything the three Lambda functions share.

The handlers in ``functions/`` stay thin; the logic lives in these modules:

- ``config``: settings read once from the environment and validated
- ``models``: pydantic models at the boundaries (API input, queue messages, webhook body)
- ``signing``: X-Recart-Signature-256 and Standard Webhooks signatures
- ``partners``: the MongoDB partner/subscription store
- ``queues``: SQS clients and the small queue interface the core uses
- ``backoff``: the retry schedule
- ``http_delivery``: the SSRF-guarded HTTP client that POSTs webhooks
- ``ingest``, ``dispatch``, ``deliver``: the core of each function
"""

__version__ = "0.1.0"
