"""When to try again."""

import random
from datetime import datetime, timedelta

from django.conf import settings

JITTER = 0.1  # +/- 10 %, so retries of many deliveries do not arrive in lockstep


def next_attempt_at(*, attempts_made: int, now: datetime, minimum_delay: float | None = None) -> datetime | None:
    """Return when attempt number attempts_made + 1 is due, or None when the schedule is exhausted.

    minimum_delay (from a Retry-After answer) pushes the retry later, never earlier.
    """
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    if attempts_made > len(schedule):
        return None
    delay = schedule[attempts_made - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if minimum_delay is not None:
        delay = max(delay, minimum_delay)
    return now + timedelta(seconds=delay)
