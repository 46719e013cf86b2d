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

api = NinjaAPI(title="Organisation webhooks API", version="1", description=DESCRIPTION, urls_namespace="api",
               throttle=[PerKeyRate()])
problems.install(api)
api.add_router("", events.catalogue)
api.add_router("", subscriptions.router)
api.add_router("", deliveries.router)
api.add_router("", events.router)
