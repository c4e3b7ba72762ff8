"""Powertools Logger, Metrics and Tracer shared by the functions and the layer.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` (set per function by the
template and the local runtime). Every metric also carries a ``stack`` dimension, the
CloudFormation stack's name (``WEBHOOKS_STACK``, set by the template; ``local`` elsewhere), so
two stacks in one account and region never share a metric, an alarm or a dashboard line.
Log lines carry ids, counts, statuses and timings, never API keys, secrets or webhook bodies.

The Tracer patches botocore (SQS, SSM) and pymongo only: patching requests or http.client
would add X-Ray's trace header to every webhook a partner receives, so the POST is a
subsegment of its own (``Deliverer._post``). It exists only when tracing is on (on Lambda,
``POWERTOOLS_TRACE_DISABLED`` not true: Powertools' own rule); otherwise ``tracer`` is an
``Untraced`` that records nothing and never imports the X-Ray SDK, whose import and patching
were about a third of every function's cold start (docs/PERFORMANCE.md, 2026-12-05).

Tracing stays behind this module: the X-Ray SDK the Tracer uses is in maintenance (support
ends 2027-02-25) and its successor is OpenTelemetry (the ADOT Lambda layer). Moving means
replacing ``tracer`` here and the tracing layer (layers/tracing); the only other code that
knows X-Ray is the deliver handler handing its trace entity to its POST threads.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, overload

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice
from aws_lambda_powertools.shared.types import AnyCallableT

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


def tracing_enabled() -> bool:
    """Powertools' rule for its Tracer: on Lambda (not SAM's or Chalice's local emulation),
    unless POWERTOOLS_TRACE_DISABLED is true. Read at import: the handlers are decorated then."""
    on_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT")) and not (
        os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE")
    )
    return on_lambda and not resolve_truthy_env_var_choice(
        os.environ.get("POWERTOOLS_TRACE_DISABLED", "false")
    )


class Untraced(Tracer):
    """The tracer when tracing is off: Powertools' disabled Tracer would still import the
    X-Ray SDK (and need the tracing layer); this one leaves handlers and methods as they are."""

    def __init__(self) -> None:  # not Tracer's: it builds the X-Ray recorder even to disable it
        self.disabled = True
        self.auto_patch = False
        self.service = os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
        self.provider: Any = None  # nothing reads it while ``disabled``

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]:
        return lambda_handler if lambda_handler is not None else _unchanged

    @overload
    def capture_method(self, method: AnyCallableT) -> AnyCallableT: ...

    @overload
    def capture_method(
        self, method: None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> Callable[[AnyCallableT], AnyCallableT]: ...

    def capture_method(
        self,
        method: AnyCallableT | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Any:
        return method if method is not None else _unchanged


def _unchanged(function: AnyCallableT) -> AnyCallableT:
    return function


tracer: Tracer = Tracer(patch_modules=["botocore", "pymongo"]) if tracing_enabled() else Untraced()
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

__all__ = ["NAMESPACE", "STACK", "MetricUnit", "Untraced", "logger", "metrics", "tracer", "tracing_enabled"]
