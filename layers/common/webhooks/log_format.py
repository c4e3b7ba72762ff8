"""One short human line per log record, for a terminal (`webhooks local` when stdout is one).

Lambda and anything reading the logs as data get Powertools' JSON lines; a person running
the stack on their machine gets, for a delivery attempt:

    12:04:31 deliver  delivered  event_4d34…  partner …a2cf5c8e  200 in 12 ms

and for anything else the time, the function, the level if not INFO, the message and the
record's own keys. The same keys as the JSON line: no secret reaches either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

# Powertools' context keys, left out of the human line (they are in the JSON one)
CONTEXT_KEYS = {
    "level", "location", "message", "timestamp", "service", "cold_start", "function_name",
    "function_memory_size", "function_arn", "function_request_id", "xray_trace_id", "sampling_rate",
    "exception", "exception_name", "exception_notes", "stack_trace", "name", "correlation_id",
}  # fmt: skip


def _short(value: Any, keep: int = 8) -> str:
    text = str(value)
    prefix = "event_" if text.startswith("event_") else ""
    body = text[len(prefix) :]
    return prefix + (body[:keep] + "…" if len(body) > keep + 1 else body)


def _short_partner(value: Any, keep: int = 8) -> str:
    """A partner id's tail: an ObjectId begins with its creation second (two partners made
    together share it) and ends with a counter and random bytes, which differ."""
    text = str(value)
    return "…" + text[-keep:] if len(text) > keep + 1 else text


class HumanFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        clock = datetime.now().strftime("%H:%M:%S")
        attempt = log.get("message") == "delivery attempt"  # written by deliver, in any process
        function = str(log.get("function_name") or ("deliver" if attempt else log.get("service")) or "")
        level = "" if log.get("level") == "INFO" else f"{log.get('level')} "
        if attempt:
            status = log.get("status")
            answer = (
                f"{status} in {log.get('latency_ms')} ms" if status else f"no answer ({log.get('error')})"
            )
            retry = f", retry in {log['retry_in_s']} s" if log.get("retry_in_s") else ""
            event, partner = _short(log.get("event_id", "")), _short_partner(log.get("partner_id", ""))
            return (
                f"{clock} {function:<8} {level}{log.get('outcome', ''):<13} {event}  "
                f"partner {partner}  attempt {log.get('attempt')}: {answer}{retry}"
            )
        extra = "  ".join(
            f"{k}={_short_partner(v) if k == 'partner_id' else _short(v, 24) if isinstance(v, str) else v}"
            for k, v in log.items()
            if k not in CONTEXT_KEYS and v is not None
        )
        line = f"{clock} {function:<8} {level}{log.get('message')}" + (f"  {extra}" if extra else "")
        if log.get("exception"):
            line += "\n" + str(log["exception"])
        return line
