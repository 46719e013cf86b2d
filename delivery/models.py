import uuid

from django.db import models
from django.db.models import Q

from organisations.models import Organisation
from subscriptions.models import Subscription
from subscriptions.validators import MAX_URL_LENGTH


class Event(models.Model):
    """One recorded activity: the JSON body, serialised once and frozen."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="events")
    activity_type = models.CharField(max_length=64)
    body = models.TextField()
    is_test = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL = no key, unique when set
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="unique_event_idempotency_key",
            )
        ]
        # Retention prunes the oldest events first.
        indexes = [models.Index(fields=["created_at"], name="event_created")]

    def __str__(self) -> str:
        return self.webhook_id

    @property
    def webhook_id(self) -> str:
        """The id receivers see in `webhook-id` and the body's `id`."""
        return webhook_id_for(self.id)


def webhook_id_for(event_id: uuid.UUID) -> str:
    return f"evt_{event_id.hex}"


class Delivery(models.Model):
    """One event to one subscription, until it succeeds, fails for good, or is cancelled."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        HELD = "held", "Held (paused)"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    UNFINISHED = (State.PENDING, State.HELD)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    # No index of its own: every index below starts with the subscription (an extra index costs every
    # insert and state change of a delivery, and record_activity writes one per subscription).
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries",
                                     db_index=False)
    # Copied from the event so the log filters without a join.
    activity_type = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    # Attempts made before the latest redelivery; the retry schedule restarts after them.
    schedule_offset = models.PositiveIntegerField(default=0)
    # When the next attempt is due (pending only). A pending delivery whose time has come waits
    # for its endpoint's sender: a wake-up on commit, or the sweeper.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A sender's claim: while in the future, no other sender takes this delivery. A sender
    # renews it before each POST, so it outlasts any request it covers (delivery.sender).
    locked_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            # The delivery log: newest first, keyset-paginated, per subscription.
            models.Index(fields=["subscription", "-created_at", "-id"], name="delivery_log"),
            # The sweeper: due unfinished work.
            models.Index(fields=["next_attempt_at"], name="delivery_due", condition=Q(state="pending")),
            # A sender's claim and last look: one endpoint's due work in order, read only as far as
            # the batch (without it each claim read the endpoint's whole backlog: 12 ms at 1,550).
            models.Index(fields=["subscription", "next_attempt_at", "created_at"], name="delivery_endpoint_due",
                         condition=Q(state="pending")),
            # Retention: finished deliveries, oldest first.
            models.Index(fields=["completed_at"], name="delivery_completed", condition=Q(completed_at__isnull=False)),
            # The log filtered by state, or by type, newest first: a state or type no row has is an empty
            # range of these, not a walk of the whole log (59.7 ms at 1M before them, issue 20).
            models.Index(fields=["subscription", "state", "-created_at", "-id"], name="delivery_log_state"),
            models.Index(fields=["subscription", "activity_type", "-created_at", "-id"], name="delivery_log_type"),
            # What each endpoint lost (delivery.health_view.Lost, on every card and page): its failed deliveries
            # since a moment, counted and the oldest found without reading the others (issue 20); in the log's
            # order, it is also the log filtered to Failed. Partial: a delivery enters it when it fails for good.
            models.Index(fields=["subscription", "-created_at", "-id"], name="delivery_failed",
                         condition=Q(state="failed")),
        ]

    def __str__(self) -> str:
        return f"{self.activity_type} to {self.subscription_id} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state not in self.UNFINISHED


class Attempt(models.Model):
    """One HTTP try. Append-only: never edited, shown read-only everywhere."""

    class ErrorKind(models.TextChoices):
        TIMEOUT = "timeout", "Timed out"
        CONNECTION = "connection", "Connection refused or reset"
        TLS = "tls", "TLS error"
        DNS = "dns", "DNS lookup failed"
        BLOCKED = "blocked", "Blocked address"
        INVALID_URL = "invalid_url", "Invalid URL"
        OTHER = "other", "Other error"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    url = models.CharField(max_length=2048)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    request_headers = models.JSONField(default=dict)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict)
    response_body = models.TextField(blank=True)
    response_truncated = models.BooleanField(default=False)
    # The body was not clean UTF-8 text (NUL, undecodable or binary bytes): stored with \xNN escapes.
    response_body_escaped = models.BooleanField(default=False)
    error_kind = models.CharField(max_length=16, choices=ErrorKind.choices, blank=True)
    error_message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="unique_attempt_number")]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error_kind}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class AttemptHour(models.Model):
    """The charts' roll-up: an endpoint's attempts in one UTC hour that took the same whole milliseconds, by outcome.

    Written with the attempts, by one INSERT ... ON CONFLICT DO UPDATE per recorded batch
    (delivery.attempt_hours). One row per distinct duration keeps the p50 and p95 exact
    (nearest rank over the counts), and an hour has at most as many rows as attempts.
    """

    # The unique constraint's index (subscription first) serves every read: no index of its own.
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()  # the UTC hour the attempts started in
    duration_ms = models.PositiveIntegerField()
    succeeded = models.PositiveIntegerField(default=0)  # answered 2xx
    http_failed = models.PositiveIntegerField(default=0)  # answered with another status
    no_answer = models.PositiveIntegerField(default=0)  # timed out, refused, TLS, DNS...

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscription", "hour", "duration_ms"],
                                               name="unique_attempt_hour")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.hour:%Y-%m-%d %H}:00 {self.duration_ms} ms"


class HourSummary(models.Model):
    """One closed hour of an endpoint's attempts, summed up once: counts by outcome and the exact p50/p95.

    Written by the charts the first time they read an hour that closed more than
    attempt_hours.SETTLE ago (delivery.attempt_hours.hour_summaries_save), from the
    roll-up rows of that hour, so a 7-day chart reads at most 168 of these and the
    roll-up of the open hours only. An hour without attempts has no row. A late
    attempt recorded into a summarised hour deletes its summary (attempt_hours_add);
    the next read writes it again. Pruned with the roll-up, by the same period.
    """

    # The unique constraint's index (subscription first) serves every read: no index of its own.
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()  # the UTC hour summed up
    succeeded = models.PositiveIntegerField()
    http_failed = models.PositiveIntegerField()
    no_answer = models.PositiveIntegerField()
    p50_ms = models.PositiveIntegerField()  # nearest rank over the hour's attempts
    p95_ms = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscription", "hour"], name="unique_hour_summary")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.hour:%Y-%m-%d %H}:00 summary"


class EndpointHealth(models.Model):
    """How one subscription's endpoint has been answering: its circuit breaker and failure record.

    Locked for the few milliseconds of a claim, so the concurrency cap and the
    single half-open probe hold across every worker process.
    """

    subscription = models.OneToOneField(
        Subscription, on_delete=models.CASCADE, primary_key=True, related_name="endpoint_health"
    )
    # The URL this record is about: a new URL starts with a clean record.
    url = models.CharField(max_length=MAX_URL_LENGTH, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # The first failed attempt since the last success (automatic pause counts from it).
    failing_since = models.DateTimeField(null=True, blank=True)
    # Breaker open: nothing but a test is sent before this moment.
    open_until = models.DateTimeField(null=True, blank=True)
    # Half-open: the lease of the one probe request in flight.
    probe_until = models.DateTimeField(null=True, blank=True)
    # The last failed attempt: its outcome ("HTTP 503", or the network error) and when it started. Written with
    # the failure's count (health.endpoint_failed), so the pages never look for it among the attempts (at 10M
    # attempts the planner's "latest attempt of this endpoint" walked all of them: 0.46 s per failing endpoint).
    last_error = models.TextField(blank=True, default="")
    last_failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "endpoint health"

    def __str__(self) -> str:
        return f"{self.url}: {self.consecutive_failures} consecutive failures"


class EndpointWake(models.Model):
    """Present while the endpoint is awake: a sender is queued or running, and will look for due work again.

    A committed delivery publishes a message only if it creates this row; the
    holder (the sender that message started) deletes it right before its last
    look (delivery.wakeups).
    """

    subscription = models.OneToOneField(
        Subscription, on_delete=models.CASCADE, primary_key=True, related_name="endpoint_wake"
    )
    # Set on creation and refreshed by the running holder; the sweeper deletes rows older
    # than its grace period (their sender died) and wakes the endpoint again.
    since = models.DateTimeField()
    # The holder found every slot it needs taken: whoever frees a slot of its organisation wakes it.
    waiting = models.BooleanField(default=False)
    # The holder is listening for a wake on its endpoint's channel (delivery.wakeups): the first caller
    # that finds this set clears it and sends one wake; later callers send nothing. (A database default too:
    # during a rolling upgrade the version before inserts rows without it.)
    listening = models.BooleanField(default=False, db_default=False)

    class Meta:
        indexes = [models.Index(fields=["subscription"], name="endpoint_wake_waiting", condition=Q(waiting=True))]

    def __str__(self) -> str:
        return (f"{self.subscription_id} since {self.since}" + (" (waiting for a slot)" if self.waiting else "")
                + (" (listening)" if self.listening else ""))


class SenderSlot(models.Model):
    """One of the concurrent holders a scope allows: an endpoint's senders, an organisation's share, or the one
    run of a job that must not run twice at once (the pruner, "job:prune_deliveries").

    A sender holds one slot of its endpoint and one of its organisation, each
    leased until `held_until` (delivery.slots), so the caps hold across
    threads, processes and machines.
    """

    scope = models.CharField(max_length=64)  # "endpoint:<subscription id>" or "organisation:<id>"
    number = models.PositiveSmallIntegerField()
    held_until = models.DateTimeField(null=True, blank=True)
    holder = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "number"], name="unique_sender_slot")]

    def __str__(self) -> str:
        return f"{self.scope} #{self.number}"


class EndpointPace(models.Model):
    """An endpoint's pace (delivery.pacing): the GCRA's theoretical arrival time, and a receiver's "slow down".

    Taken with one conditional UPDATE per claimed batch, so the limit holds across
    threads, processes and machines. Only endpoints with a limit, or whose receiver
    asked us to slow down, have a row.
    """

    subscription = models.OneToOneField(
        Subscription, on_delete=models.CASCADE, primary_key=True, related_name="endpoint_pace"
    )
    # Unix seconds: when the endpoint's next request may go at its rate (the schedule reserved so far ends here).
    tat = models.FloatField(default=0.0)
    # The receiver asked us to slow down (429, or 503 with Retry-After): nothing goes before this moment, then
    # the pace ramps up again (delivery.pacing). NULL: it never asked.
    slow_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.subscription_id} paced to {self.tat}"
