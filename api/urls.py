from django.urls import path, re_path

from api.error_pages import NOT_FOUND
from api.problems import problem
from api.v1 import api


def not_found(request, *args, **kwargs):
    """Any other URL under /api/: a problem details 404, like the API's own (not the pages' HTML)."""
    return problem(404, NOT_FOUND)


urlpatterns = [
    path("api/v1/", api.urls),
    re_path(r"^api/", not_found, name="api_not_found"),
]
