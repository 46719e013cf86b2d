from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from webhooks_project.login_forms import AdminLoginForm, LoginForm

admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="console:subscription_list", permanent=False)),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("console.urls")),
    path("django-admin/", admin.site.urls),
    path("", include("operations.urls")),
    path("", include("api.urls")),
]

# Errors raised before a view answers (a Host header not allowed, a middleware's 500): problem details under /api/.
handler400 = "api.error_pages.bad_request"
handler403 = "api.error_pages.permission_denied"
handler404 = "api.error_pages.page_not_found"
handler500 = "api.error_pages.server_error"
