"""The HTTP API (ingest function): ``app`` is the Powertools resolver, one router per area."""

from .app import app, openapi_document

__all__ = ["app", "openapi_document"]
