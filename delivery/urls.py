from django.urls import path

from delivery import bulk_views, views

app_name = "delivery"

# Included under a subscription: /administration/webhooks/<subscription_id>/deliveries/...
urlpatterns = [
    path("redeliver/", bulk_views.deliveries_bulk_redeliver, name="bulk_redeliver"),
    path("<uuid:delivery_id>/", views.delivery_detail, name="detail"),
    path("<uuid:delivery_id>/redeliver/", views.delivery_redeliver, name="redeliver"),
]
