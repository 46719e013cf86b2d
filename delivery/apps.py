from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"

    def ready(self):
        from celery.signals import worker_ready, worker_shutting_down

        from delivery import (
            checks,  # noqa: F401 - registers the deploy checks
            receivers,
        )
        from subscriptions import signals

        signals.activity_occurred.connect(receivers.record_event_on_activity,
                                          dispatch_uid="delivery.record_event_on_activity")
        signals.subscription_paused.connect(receivers.hold_on_pause, dispatch_uid="delivery.hold_on_pause")
        signals.subscription_resumed.connect(receivers.release_on_resume, dispatch_uid="delivery.release_on_resume")
        signals.subscription_deleted.connect(receivers.cancel_on_delete, dispatch_uid="delivery.cancel_on_delete")
        signals.subscription_url_changed.connect(receivers.reset_on_url_change,
                                                 dispatch_uid="delivery.reset_on_url_change")
        worker_ready.connect(receivers.listen_in_worker, dispatch_uid="delivery.listen_in_worker")
        worker_shutting_down.connect(receivers.stop_listening, dispatch_uid="delivery.stop_listening")
