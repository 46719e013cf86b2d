from django.urls import include, path

from subscriptions import catalogue_views, list_views, views

app_name = "subscriptions"

urlpatterns = [
    path("", list_views.subscription_list, name="list"),
    path("create/", views.subscription_create, name="create"),
    path("events/", catalogue_views.event_catalogue, name="events"),
    path("<uuid:subscription_id>/", views.subscription_detail, name="detail"),
    path("<uuid:subscription_id>/secret/", views.subscription_secret, name="secret"),
    path("<uuid:subscription_id>/log/", views.subscription_log, name="log"),
    path("<uuid:subscription_id>/edit/", views.subscription_edit, name="edit"),
    path("<uuid:subscription_id>/test/", views.subscription_test, name="test"),
    path("<uuid:subscription_id>/regenerate-secret/", views.subscription_regenerate, name="regenerate"),
    path("<uuid:subscription_id>/stop-old-secret/", views.subscription_stop_old_secret, name="stop_old_secret"),
    path("<uuid:subscription_id>/pause/", views.subscription_pause, name="pause"),
    path("<uuid:subscription_id>/resume/", views.subscription_resume, name="resume"),
    path("<uuid:subscription_id>/recover/", views.subscription_recover, name="recover"),
    path("<uuid:subscription_id>/delete/", views.subscription_delete, name="delete"),
    path("<uuid:subscription_id>/deliveries/", include("delivery.urls")),
]
