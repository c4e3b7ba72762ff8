"""The HTTP API (ingest function): ``app`` is the Powertools resolver, one router per area.

- ``app``: the resolver, its routers, auth middleware and the generated OpenAPI document
- ``auth``: who may call what (the admin key, a partner's API key or portal token), as one
  middleware
- ``context``: what a route needs from the invocation (the services, the calling partner)
- ``errors``: every domain error, validation failure and outage as a JSON answer and status
- ``parameters``: undeclared query parameters refused by name
- ``replies``: JSON responses and the raw body of the routes that read it
- ``events``: the producers' route (events in, one envelope on the events queue)
- ``partners``, ``event_types``, ``deliveries``, ``recovery``, ``stats``: one router per area
- ``endpoints``: a partner's endpoints, the operator's routes and the partner's own
- ``portal``: the operator's portal-token routes
- ``console``: the web console's static files and Swagger UI
"""

from .app import app, openapi_document

__all__ = ["app", "openapi_document"]
