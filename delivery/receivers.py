"""Signal receivers: a few lines each, connected in DeliveryConfig.ready()."""

from django.db import transaction

from delivery import health, states, wakeups
from delivery.outbox import event_record


def record_event_on_activity(sender, *, organisation, activity_type, data, idempotency_key=None,
                             is_test=False, subscription=None, **kwargs):
    """Write the outbox for an activity in the caller's transaction; return the Event."""
    return event_record(organisation=organisation, activity_type=activity_type, data=data,
                        idempotency_key=idempotency_key, is_test=is_test, subscription=subscription)


def hold_on_pause(sender, *, subscription, **kwargs) -> int:
    """Hold the paused subscription's pending deliveries; return how many."""
    return states.deliveries_hold(subscription_id=subscription.id)


def release_on_resume(sender, *, subscription, **kwargs) -> int:
    """Forget the endpoint's failures, make held deliveries due, wake the endpoint on commit; return how many."""
    health.endpoint_reset(subscription_id=subscription.id)
    released = states.deliveries_resume(subscription_id=subscription.id)
    if released:
        transaction.on_commit(lambda: wakeups.endpoints_awaken([subscription.id]))
    return released


def reset_on_url_change(sender, *, subscription, url, **kwargs) -> int:
    """Start the endpoint's breaker record afresh for its new URL; return 0 (no delivery changes)."""
    health.endpoint_reset(subscription_id=subscription.id, url=url)
    return 0


def cancel_on_delete(sender, *, subscription, **kwargs) -> int:
    """Cancel the deleted subscription's unfinished deliveries; return how many."""
    return states.deliveries_cancel(subscription_id=subscription.id)


def listen_in_worker(**kwargs) -> None:
    """A worker has started (Celery's worker_ready): its holders listen for a wake before they let go."""
    wakeups.listening_start()


def stop_listening(**kwargs) -> None:
    """The worker is shutting down (Celery's worker_shutting_down): a listening holder would keep a warm
    shutdown waiting while its endpoint's events keep coming; each stops within LISTEN_SECONDS."""
    wakeups.listening_stop()
