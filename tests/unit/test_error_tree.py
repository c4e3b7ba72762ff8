"""The layer's exceptions form one tree: a caller catches ``WebhooksError`` for anything the
platform raises on purpose, and the API alone decides the status of each kind."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import webhooks
from webhooks import errors
from webhooks.api.errors import STATUS
from webhooks.ingest.schema_rules import OutOfTime

# jsonschema's error records, yielded while validating and never raised
NOT_RAISED = {OutOfTime}


def layer_exceptions() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for module_info in pkgutil.walk_packages(webhooks.__path__, "webhooks."):
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith("webhooks."):
                found.add(value)
    return found


def test_every_exception_of_the_layer_derives_from_webhooks_error() -> None:
    found = layer_exceptions() - NOT_RAISED
    assert len(found) > 20  # the walk saw the whole layer
    assert {cls.__qualname__ for cls in found if not issubclass(cls, errors.WebhooksError)} == set()


def test_every_kind_a_caller_sees_has_a_status_and_no_exception_carries_one() -> None:
    kinds = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ServiceError) and cls is not errors.ServiceError
    }
    assert kinds == set(STATUS)
    assert [cls.__qualname__ for cls in layer_exceptions() if "status_code" in vars(cls)] == []
    for cls in layer_exceptions() - NOT_RAISED:
        assert sum(issubclass(cls, kind) for kind in STATUS) <= 1, cls  # one status, never two


def test_the_tree_in_the_docstring_names_every_exception() -> None:
    documented = errors.__doc__ or ""
    missing = {cls.__name__ for cls in layer_exceptions() - NOT_RAISED if cls.__name__ not in documented}
    assert missing == set()
