"""Signal receivers: a few lines each, connected in DeliveryConfig.ready()."""

from delivery.outbox import event_record


def record_event_on_activity(sender, *, organisation, activity_type, data, idempotency_key=None, **kwargs):
    """Write the outbox for an activity in the caller's transaction; return the Event."""
    return event_record(
        organisation=organisation, activity_type=activity_type, data=data, idempotency_key=idempotency_key
    )
