"""Powertools Logger and Metrics shared by the functions and the layer.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` (set per function by the
template and the local runtime). Log lines carry ids, counts, statuses and timings,
never API keys, secrets or webhook bodies.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "Webhooks"

logger = Logger()
metrics = Metrics(namespace=NAMESPACE)

__all__ = ["NAMESPACE", "MetricUnit", "logger", "metrics"]
