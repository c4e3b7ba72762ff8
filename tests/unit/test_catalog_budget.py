"""One time limit for all the pattern matching of a request (catalog.validation_budget)."""

from __future__ import annotations

from webhooks.ingest.catalog import EventTypeCatalog, _validator, validation_budget

SCHEMA = {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}}


def test_once_a_requests_budget_is_spent_no_further_pattern_is_matched() -> None:
    validator = _validator(SCHEMA)
    with validation_budget(0) as budget:  # nothing left: even a fast pattern is not run
        errors = EventTypeCatalog.errors(0, validator, ["fine", "also"])  # type: ignore[arg-type]
    assert budget.spent
    assert errors == ["[0].data[0]: not checked: the event type's schema took too long to check this request"]


def test_within_the_budget_every_item_is_checked_and_errors_name_each() -> None:
    validator = _validator(SCHEMA)
    with validation_budget(60) as budget:
        errors = EventTypeCatalog.errors(0, validator, ["fine", "Bad", "x1"])  # type: ignore[arg-type]
    assert not budget.spent
    assert errors == [
        "[0].data[1]: 'Bad' does not match '^[a-z]+$'",
        "[0].data[2]: 'x1' does not match '^[a-z]+$'",
    ]
