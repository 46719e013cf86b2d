"""Signals only: what the delivery side tells others (alerts) about endpoints.

Sent by delivery.sender after the attempt's transaction commits, with
`subscription` (as it is now) and `reason` (what failed, in words).
"""

from django.dispatch import Signal

# An endpoint's breaker opened: it failed BREAKER_THRESHOLD attempts in a row (or a probe failed).
endpoint_failing = Signal()
# A subscription was paused automatically (410 Gone, or days of nothing but failures).
endpoint_auto_paused = Signal()
