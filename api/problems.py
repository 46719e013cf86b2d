"""Errors as RFC 9457 problem details (application/problem+json), with the field at fault.

Every error the API answers goes through `problem()`: validation errors (422, each with its field),
authentication (401, with WWW-Authenticate), scope (403), not found (404: another organisation's ids
too), conflicts (409), too large (413), rate limit (429 with Retry-After), and anything unexpected (500).
"""

import json
import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError

from subscriptions.exceptions import ActivityError, UnknownActivityType

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 413: "Request too large", 422: "Invalid request", 429: "Too many requests",
          500: "Internal server error"}


class Problem(Exception):
    """An error the API answers as problem details: raise it from an endpoint."""

    def __init__(self, status: int, detail: str, *, errors: list[dict] | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers or {}


def problem(status: int, detail: str, *, errors: list[dict] | None = None, headers: dict | None = None
            ) -> HttpResponse:
    """Return the problem details response: type, title, status, detail, and `errors` [{field, detail}]."""
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    response = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def field_errors(exc: DjangoValidationError, prefix: str = "") -> list[dict]:
    """Return a service's ValidationError as [{field, detail}], in the request's field names."""
    if hasattr(exc, "error_dict"):
        return [{"field": prefix + (name if name != "__all__" else "").rstrip("."), "detail": message}
                for name, messages in exc.message_dict.items() for message in messages]
    return [{"field": prefix.rstrip(".") or None, "detail": message} for message in exc.messages]


def activity_error(exc: ActivityError, prefix: str = "") -> list[dict]:
    """Return record_activity's error as [{field, detail}]: the activity type or the data at fault."""
    return [{"field": prefix + ("type" if isinstance(exc, UnknownActivityType) else "data"), "detail": str(exc)}]


def _validation_field(loc: list) -> str:
    """Return the request field a pydantic error is about: body fields without the parameter's name."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        if where == "body" and len(rest) > 1:
            rest = rest[1:]  # the endpoint's parameter name (`payload`) is not part of the request
        return ".".join(rest) or where
    return ".".join(parts)


def install(api) -> None:
    """Answer every error of `api` as problem details."""

    @api.exception_handler(Problem)
    def _problem(request, exc: Problem):
        return problem(exc.status, exc.detail, errors=exc.errors, headers=exc.headers)

    @api.exception_handler(NinjaValidationError)
    def _invalid(request, exc: NinjaValidationError):
        errors = [{"field": _validation_field(e.get("loc", [])), "detail": e.get("msg", "Invalid value.")}
                  for e in exc.errors]
        return problem(422, "The request has invalid fields: see errors.", errors=errors)

    @api.exception_handler(DjangoValidationError)
    def _service_invalid(request, exc: DjangoValidationError):
        return problem(422, "The request has invalid fields: see errors.", errors=field_errors(exc))

    @api.exception_handler(ActivityError)
    def _activity_invalid(request, exc: ActivityError):
        return problem(422, str(exc), errors=activity_error(exc))

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request, exc):
        return problem(401, "Send a valid API key: Authorization: Bearer whk_...",
                       headers={"WWW-Authenticate": 'Bearer realm="api"'})

    @api.exception_handler(AuthorizationError)
    def _forbidden(request, exc):
        return problem(403, str(exc))

    @api.exception_handler(Throttled)
    def _throttled(request, exc):
        return problem(429, "This key made too many requests this minute: retry after Retry-After seconds.")

    @api.exception_handler(HttpError)
    def _http_error(request, exc: HttpError):
        return problem(exc.status_code, str(exc))

    @api.exception_handler(Http404)
    def _not_found(request, exc):
        return problem(404, str(exc) or "Not found.")

    @api.exception_handler(Exception)
    def _unexpected(request, exc):
        logger.exception("API error on %s %s", request.method, request.path)
        return problem(500, "Something went wrong on our side; it was logged.")
