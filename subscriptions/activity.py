"""The helper domain code calls to record an activity."""

from subscriptions.signals import activity_occurred


def record_activity(*, organisation, activity_type: str, data: dict, idempotency_key: str | None = None, sender=None):
    """Send `activity_occurred` and return the Event it recorded.

    Raises UnknownActivityType or InvalidActivityData at the call for bad input.
    """
    responses = activity_occurred.send(
        sender=sender or record_activity,
        organisation=organisation,
        activity_type=activity_type,
        data=data,
        idempotency_key=idempotency_key,
    )
    for _receiver, response in responses:
        if response is not None:
            return response
    return None
