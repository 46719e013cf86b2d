"""Signals only: receivers are connected in AppConfig.ready().

They let the subscription side tell the delivery side what happened without
importing it: delivery depends on subscriptions, never the other way round.
"""

from django.dispatch import Signal

# Sent by domain code when something happened in an organisation.
# Arguments: organisation, activity_type (a code of the catalogue), data (a
# JSON object), and optionally idempotency_key; a test send adds is_test=True
# and subscription (the only one to deliver to). The receiver in `delivery`
# writes the outbox in the caller's transaction and returns the Event.
activity_occurred = Signal()

# Sent inside the transaction that paused, resumed or deleted a subscription
# (argument: subscription). The receivers in `delivery` hold, release or
# cancel its deliveries and return how many.
subscription_paused = Signal()
subscription_resumed = Signal()
subscription_deleted = Signal()

# Sent inside the transaction that changed a subscription's endpoint URL (arguments: subscription,
# url). The receiver in `delivery` starts the endpoint's breaker record afresh: the old
# address's failures say nothing of the new one.
subscription_url_changed = Signal()
