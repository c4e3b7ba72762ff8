"""The short ``delivery attempt`` line of a delivered attempt: the keys an operator queries,
without the ones Powertools adds to every line (a failed attempt gets the full line)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from ..models import to_json
from ..observability import logger


class _ShortLine(logging.Formatter):
    """A delivered attempt's own keys only, rendered by the formatter the deliver logger uses
    at the time (Powertools' JSON lines, or `webhooks local`'s human ones, which also name the
    function). Left out: the keys Powertools adds to every line of an invocation (level,
    location, timestamp, service, function name, ARN, memory, request id, cold start, trace
    id), over half the bytes of the line and the same on every line of the log group; a
    delivered attempt is INFO, and CloudWatch stamps each line's time itself."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = record.__dict__["fields"]  # set by log_delivered
        formatter = logger.registered_formatter
        if type(formatter) is not LambdaPowertoolsFormatter:  # a human line: which function
            fields = {"level": "INFO", "service": logger.service, **fields}
        if not isinstance(formatter, LambdaPowertoolsFormatter):
            return to_json(fields)
        # typed for a LogRecord, serialize() takes the dict Powertools' format() builds
        return formatter.serialize(fields)  # type: ignore[arg-type]


class _LoggersStream(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes wherever the deliver logger's own handler writes at the time."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return getattr(logger.registered_handler, "stream", None) or sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler's constructor sets one: the logger's is used instead


_delivered_lines = logging.getLogger("webhooks.delivered")
_delivered_lines.propagate = False  # like Powertools' logger: no second copy via the root logger
_delivered_handler = _LoggersStream()
_delivered_handler.setFormatter(_ShortLine())
_delivered_lines.addHandler(_delivered_handler)
_delivered_lines.setLevel(logging.INFO)  # gated by the deliver logger's level instead


def log_delivered(fields: dict[str, Any]) -> None:
    """The short ``delivery attempt`` line of a delivered attempt (see :class:`_ShortLine`),
    at the deliver logger's level."""
    if logger.log_level > logging.INFO:
        return
    _delivered_lines.info("delivery attempt", extra={"fields": {"message": "delivery attempt", **fields}})
