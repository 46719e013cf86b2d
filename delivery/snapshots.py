"""What the sender reads of an endpoint, one statement each: the subscription as it is now, and its breaker record.

Right before each request the sender reads the subscription again (a delete,
pause, URL change or regenerated secret that committed before applies to that
request): `delivery_snapshot`. A claim reads the same fields with the
deliveries it claims (delivery.states.deliveries_claim), so the first request
of a batch needs no read of its own. Reads only: nothing here writes.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from delivery.compiled import Compiled, Param
from delivery.models import Delivery
from subscriptions.models import Subscription

# The subscription's fields a request depends on, in this order wherever they are read (and its pace's
# slow-down, delivery.pacing).
SENDING = ("state", "deleted_at", "url", "secret_encrypted", "previous_secret_encrypted", "previous_secret_until",
           "custom_headers", "timeout_seconds", "max_per_second", "ordered", "endpoint_pace__slow_until")
# The endpoint's breaker record (delivery.models.EndpointHealth), read with the subscription.
RECORD = ("url", "consecutive_failures", "failing_since", "open_until", "probe_until")


@dataclass(frozen=True)
class Sending:
    """The subscription as a request must see it."""

    state: str
    deleted_at: datetime | None
    url: str
    secret_encrypted: str
    previous_secret_encrypted: str
    previous_secret_until: datetime | None
    custom_headers: list
    timeout_seconds: int | None
    max_per_second: int | None  # the receiver's rate limit (delivery.pacing), None: none
    ordered: bool  # one delivery in flight at a time, in the order of recording (delivery.states.in_order)
    slow_until: datetime | None  # the receiver asked us to slow down until then (delivery.pacing), None: never

    @property
    def timeout(self) -> float:
        """The hard deadline of one exchange with the endpoint, in seconds (its own, or WEBHOOKS_TIMEOUT)."""
        return float(self.timeout_seconds or settings.WEBHOOKS_TIMEOUT)

    @property
    def sends(self) -> bool:
        """True while the subscription is neither paused nor deleted."""
        return self.deleted_at is None and self.state == Subscription.State.ACTIVE


@dataclass(frozen=True)
class Record:
    """The endpoint's breaker record, about its current URL (a record about an earlier URL reads as none)."""

    consecutive_failures: int
    failing_since: datetime | None
    open_until: datetime | None
    probe_until: datetime | None

    @property
    def clean(self) -> bool:
        return not self.consecutive_failures and self.open_until is None and self.probe_until is None


@dataclass(frozen=True)
class Endpoint:
    """A subscription's endpoint as the sender finds it when it looks."""

    id: uuid.UUID
    organisation_id: int
    sending: Sending
    record: Record | None


def sending_of(values) -> Sending:
    """Return the Sending of the SENDING fields' values, in that order."""
    return Sending(*values)


def record_of(values, *, url: str) -> Record | None:
    """Return the Record of the RECORD fields' values (in that order), or None: no record, or one about another URL."""
    record_url, *record = values
    return Record(*record) if record_url is not None and record_url == url else None


_ENDPOINT = Compiled(lambda: Subscription.objects.filter(id=Param("id", Subscription._meta.pk)).values_list(
    "id", "organisation_id", *SENDING, *(f"endpoint_health__{name}" for name in RECORD)))
_DELIVERY = Compiled(lambda: Delivery.objects.filter(id=Param("id", Delivery._meta.pk)).values_list(
    "state", *(f"subscription__{name}" for name in SENDING)))


def endpoint_snapshot(*, subscription_id) -> Endpoint | None:
    """Return the endpoint as it is now (subscription and breaker record), or None if it does not exist."""
    rows = _ENDPOINT.run(id=subscription_id)
    if not rows:
        return None
    row = rows[0]
    sending = sending_of(row[2:2 + len(SENDING)])
    return Endpoint(id=row[0], organisation_id=row[1], sending=sending,
                    record=record_of(row[2 + len(SENDING):], url=sending.url))


def delivery_snapshot(*, delivery_id) -> tuple[str, Sending] | None:
    """Return (the delivery's state, its subscription as it is now), or None if the delivery is gone."""
    rows = _DELIVERY.run(id=delivery_id)
    if not rows:
        return None
    return rows[0][0], sending_of(rows[0][1:])

