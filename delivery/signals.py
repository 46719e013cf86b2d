"""Signals only: what the delivery side tells others (alerts) about endpoints.

Sent by delivery.sender after the attempt's transaction commits, with
`subscription` (as it is now) and `reason` (what failed, in words), unless said otherwise.
"""

from django.dispatch import Signal

# An endpoint's breaker opened: it failed BREAKER_THRESHOLD attempts in a row (or a probe failed).
endpoint_failing = Signal()
# A subscription was paused automatically (410 Gone, or days of nothing but failures).
endpoint_auto_paused = Signal()
# Deliveries of an endpoint failed for good (every retry used), with `subscription_id` only: the receiver
# notes it cheaply, a periodic digest tells the admins (alerts.services.alerts_lost_send).
deliveries_failed_for_good = Signal()
