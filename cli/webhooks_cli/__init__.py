"""The ``webhooks`` command-line tool and the local runtime (development only).

- ``main``: the ``webhooks`` command; ``commands/``: one module per command group
- ``dlq``: the delivery DLQ for the CLI, over the layer's dead-letter rules
- ``state``: ``.local/``, where the runtime keeps its data and tells the CLI its endpoints
- ``runtime``: ``webhooks local``, the whole pipeline on one machine
- ``topology``: the queues and their attributes, as ``infra/template.yaml`` has them
- ``lambdas``: the function handlers loaded as Lambda does, with a Lambda-like context
- ``apigw``: a local HTTP server that calls a handler as API Gateway does;
  ``api_worker``: one of the processes serving it (``--api-workers``)
- ``poller``: an SQS poller with the semantics of Lambda's event source mapping
- ``servers``: the embedded development servers, started and stopped; ``sqs_server``: moto's
  SQS server; ``secantus_server``: SecantusDB (MongoDB wire protocol); ``pins``: the library
  versions whose internals they patch
- ``stop_signals``: SIGTERM and SIGINT turned into an ordinary call
- ``demo``: the ``make run`` demo receiver
"""
