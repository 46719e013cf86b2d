from django.urls import path, re_path

from api.error_pages import api_not_found
from api.v1 import api

urlpatterns = [
    path("api/v1/", api.urls),
    re_path(r"^api/", api_not_found, name="api_not_found"),
]
