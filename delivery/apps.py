from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"

    def ready(self):
        from delivery import checks  # noqa: F401 - registers the deploy checks
        from delivery.receivers import record_event_on_activity
        from subscriptions.signals import activity_occurred

        activity_occurred.connect(record_event_on_activity, dispatch_uid="delivery.record_event_on_activity")
