"""The JSON Schema machinery of the event type catalog (catalog.py says why it is shaped so).

Imported by catalog.py only where a schema is registered or applied, so an ingest instance
whose producers post no registered type never loads jsonschema, referencing or regex.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import regex
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from referencing import Registry

from .catalog import PATTERN_TIMEOUT_SECONDS, _budget

# validators get this empty registry: a ``$ref`` resolves inside the schema or not at all
NO_RETRIEVAL: Registry = Registry()  # type: ignore[type-arg]


class OutOfTime(ValidationError):
    """A match that ran out of time: validation of the whole request stops here."""


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    timeout = PATTERN_TIMEOUT_SECONDS
    budget = _budget.get()
    if budget is not None:
        left = budget.deadline - time.monotonic()
        if budget.spent or left <= 0:
            budget.spent = True
            yield OutOfTime("not checked: the event type's schema took too long to check this request")
            return
        timeout = min(timeout, left)
    try:
        matched = regex.search(pattern, instance, timeout=timeout)
    except TimeoutError:
        if budget is not None:
            budget.spent = True
        yield OutOfTime(f"does not match {pattern!r} (the pattern took too long to check)")
        return
    except regex.error:
        yield ValidationError(f"the schema's pattern {pattern!r} cannot be used")
        return
    if matched is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


SafeValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]
