from django.urls import path

from delivery import views

app_name = "delivery"

# Included under a subscription: /administration/webhooks/<subscription_id>/deliveries/...
urlpatterns = [
    path("<uuid:delivery_id>/", views.delivery_detail, name="detail"),
    path("<uuid:delivery_id>/redeliver/", views.delivery_redeliver, name="redeliver"),
]
