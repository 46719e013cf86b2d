"""The management API, version 1: one NinjaAPI, its routers, its error format, its rate limit."""

from ninja import NinjaAPI

from api import problems
from api.auth import PerKeyRate
from api.endpoints import deliveries, events, subscriptions

DESCRIPTION = """\
The organisation's webhooks, their delivery logs, and the ingest of activities, for integrators' code
and apps that are not Django. Authenticate with an organisation API key (Administration > API keys):
`Authorization: Bearer whk_...`. Scopes: `read`, `write` (includes read), `events` (POST /events).
Errors are RFC 9457 problem details (`application/problem+json`); validation errors list each field at
fault in `errors`. Another organisation's ids answer 404. Each key may make a limited number of requests
per minute (429 with Retry-After beyond).
"""

PROBLEM_SCHEMA = {
    "title": "Problem", "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "description": "Each field at fault (validation errors).", "items": {
            "type": "object", "required": ["field", "detail"],
            "properties": {"field": {"type": ["string", "null"]}, "detail": {"type": "string"}}}},
    },
}
# What any operation may answer besides its own success; 409 where a change conflicts.
ERRORS = {
    "400": "The body is not JSON.",
    "401": "No key, or an unknown, revoked or expired one.",
    "403": "The key lacks the operation's scope.",
    "404": "No such resource in the key's organisation.",
    "409": "The change conflicts with the resource's state.",
    "413": "The body is over the size limit.",
    "422": "Invalid fields: see `errors`.",
    "429": "Over the key's rate limit: retry after Retry-After seconds.",
}


class WebhooksApi(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """Return the schema with every operation's error answers: problem details (application/problem+json)."""
        schema = super().get_openapi_schema(*args, **kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, description in ERRORS.items():
                    operation["responses"].setdefault(status, {"description": description, "content": problem})
                operation["responses"]["429"]["headers"] = {
                    "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
        return schema


api = WebhooksApi(title="Organisation webhooks API", version="1", description=DESCRIPTION, urls_namespace="api",
                  throttle=[PerKeyRate()])
problems.install(api)
api.add_router("", events.catalogue)
api.add_router("", subscriptions.router)
api.add_router("", deliveries.router)
api.add_router("", events.router)
