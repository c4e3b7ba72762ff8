"""Powertools Logger, Metrics and Tracer shared by the functions and the layer.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` (set per function by the
template and the local runtime). Every metric also carries a ``stack`` dimension, the
CloudFormation stack's name (``WEBHOOKS_STACK``, set by the template; ``local`` elsewhere), so
two stacks in one account and region never share a metric, an alarm or a dashboard line.
Log lines carry ids, counts, statuses and timings, never API keys, secrets or webhook bodies.

The Tracer patches botocore (SQS, SSM) and pymongo only: patching requests or http.client
would add X-Ray's trace header to every webhook a partner receives, so the POST is a
subsegment of its own (``Deliverer._post``). Outside Lambda the Tracer disables itself.

Tracing stays behind this module: the X-Ray SDK the Tracer uses is in maintenance (support
ends 2027-02-25) and its successor is OpenTelemetry (the ADOT Lambda layer). Moving means
replacing ``tracer`` here and the tracing layer (layers/tracing); the only other code that
knows X-Ray is the deliver handler handing its trace entity to its POST threads.
"""

from __future__ import annotations

import os
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

NAMESPACE = "Webhooks"
# read once at import, before any setting: the dimension must be on the first metric flushed
STACK = os.environ.get("WEBHOOKS_STACK", "").strip() or "local"
# an invocation that recorded no metric (a health check, a dispatch with nothing to send) is
# normal here, not worth a warning on every one
warnings.filterwarnings("ignore", message="No application metrics to publish")


class _EMFProvider(AmazonCloudWatchEMFProvider):
    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        super().flush_metrics(raise_on_empty_metrics)
        # With POWERTOOLS_METRICS_DISABLED set, Powertools 3.37 skips the print but keeps the
        # values, then prints them anyway once 100 accumulate; clearing here stops that.
        self.clear_metrics()


logger = Logger()


def use_human_lines() -> None:
    """One short line per record instead of a JSON line (`webhooks local` in a terminal)."""
    from .log_format import HumanFormatter

    logger.registered_handler.setFormatter(HumanFormatter())


# WEBHOOKS_LOG_FORMAT=human: how `webhooks local` hands the choice to its API worker processes
if os.environ.get("WEBHOOKS_LOG_FORMAT", "json").strip().lower() == "human":
    use_human_lines()
tracer = Tracer(patch_modules=["botocore", "pymongo"])
metrics = Metrics(namespace=NAMESPACE)
metrics.provider = _EMFProvider(
    namespace=NAMESPACE,
    metric_set=metrics.metric_set,
    dimension_set=metrics.dimension_set,
    metadata_set=metrics.metadata_set,
    default_dimensions=metrics.default_dimensions,
)
# survives Powertools' clear after each flush (default dimensions are kept, others are not)
metrics.set_default_dimensions(stack=STACK)

__all__ = ["NAMESPACE", "STACK", "MetricUnit", "logger", "metrics", "tracer"]
