"""The site's error pages (the root URLconf's handler400/403/404/500): problem details under /api/, the pages'
HTML elsewhere.

The API answers its own errors as problem details (api.problems), but a request can fail before it reaches
the API: a Host header that is malformed or not in ALLOWED_HOSTS (Django's DisallowedHost, a 400 raised by
its middleware), a 500 in a middleware. Django then answers with the URLconf's error views, which are HTML;
an API client asked for application/problem+json (the schema says so for every error) and gets that.
"""

from django.views import defaults

from api.problems import problem

API_PREFIX = "/api/"


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def api_not_found(request, *args, **kwargs):
    """A URL under /api/ that nothing answers: a problem details 404, like the API's own (not the pages' HTML)."""
    return problem(404, "No such API URL: see /api/v1/docs.")


def bad_request(request, exception):
    if _is_api(request):
        return problem(400, "Bad request: the request's Host header is not one this site serves, or the request "
                            "is malformed.")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _is_api(request):
        return problem(403, "Forbidden.")
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if _is_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return problem(500, "Internal server error.")
    return defaults.server_error(request)
