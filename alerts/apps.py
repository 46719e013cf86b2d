from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self):
        from alerts import receivers
        from delivery import signals

        signals.endpoint_failing.connect(receivers.email_on_failing, dispatch_uid="alerts.email_on_failing")
        signals.endpoint_auto_paused.connect(receivers.email_on_auto_paused, dispatch_uid="alerts.email_on_auto_paused")
        signals.deliveries_failed_for_good.connect(receivers.note_lost, dispatch_uid="alerts.note_lost")
