"""The console's pages. Each URL is named after its view: `console:<view name>`."""

from django.urls import include, path

from console import (
    api_key_views,
    breaker_views,
    bulk_views,
    catalogue_views,
    delivery_views,
    event_views,
    list_views,
    notification_views,
    organisation_views,
    subscription_views,
)

app_name = "console"

webhook_patterns = [
    path("", list_views.subscription_list, name="subscription_list"),
    path("create/", subscription_views.subscription_create, name="subscription_create"),
    path("events/", catalogue_views.event_catalogue, name="event_catalogue"),
    path("<uuid:subscription_id>/", subscription_views.subscription_detail, name="subscription_detail"),
    path("<uuid:subscription_id>/secret/", subscription_views.subscription_secret, name="subscription_secret"),
    path("<uuid:subscription_id>/log/", subscription_views.subscription_log, name="subscription_log"),
    path("<uuid:subscription_id>/edit/", subscription_views.subscription_edit, name="subscription_edit"),
    path("<uuid:subscription_id>/test/", subscription_views.subscription_test, name="subscription_test"),
    path("<uuid:subscription_id>/regenerate-secret/", subscription_views.subscription_regenerate,
         name="subscription_regenerate"),
    path("<uuid:subscription_id>/stop-old-secret/", subscription_views.subscription_stop_old_secret,
         name="subscription_stop_old_secret"),
    path("<uuid:subscription_id>/pause/", subscription_views.subscription_pause, name="subscription_pause"),
    path("<uuid:subscription_id>/resume/", subscription_views.subscription_resume, name="subscription_resume"),
    path("<uuid:subscription_id>/try-now/", breaker_views.subscription_try_now, name="subscription_try_now"),
    path("<uuid:subscription_id>/recover/", subscription_views.subscription_recover, name="subscription_recover"),
    path("<uuid:subscription_id>/delete/", subscription_views.subscription_delete, name="subscription_delete"),
    path("<uuid:subscription_id>/deliveries/redeliver/", bulk_views.deliveries_bulk_redeliver,
         name="deliveries_bulk_redeliver"),
    path("<uuid:subscription_id>/deliveries/<uuid:delivery_id>/", delivery_views.delivery_detail,
         name="delivery_detail"),
    path("<uuid:subscription_id>/deliveries/<uuid:delivery_id>/redeliver/", delivery_views.delivery_redeliver,
         name="delivery_redeliver"),
]

api_key_patterns = [
    path("", api_key_views.api_keys, name="api_keys"),
    path("<uuid:api_key_id>/created/", api_key_views.api_key_created, name="api_key_created"),
    path("<uuid:api_key_id>/revoke/", api_key_views.api_key_revoke_view, name="api_key_revoke"),
]

urlpatterns = [
    path("administration/webhooks/", include(webhook_patterns)),
    path("administration/events/", event_views.event_list, name="event_list"),
    path("administration/api-keys/", include(api_key_patterns)),
    path("accounts/notifications/", notification_views.notifications, name="notifications"),
    path("accounts/organisation/", organisation_views.organisation_switch, name="organisation_switch"),
]
