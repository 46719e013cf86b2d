"""What the API reads and answers (pydantic, through Django Ninja): the OpenAPI schema is generated from these."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, AwareDatetime, field_validator

from delivery.models import Delivery
from subscriptions.custom_headers import MAX_HEADERS
from subscriptions.models import RATE_MAX, RATE_MIN, TIMEOUT_MAX, TIMEOUT_MIN
from subscriptions.validators import MAX_URL_LENGTH

DeliveryState = Literal[tuple(Delivery.State.values)]


def _in_utc(value: datetime | None) -> datetime | None:
    """A moment with a zone, in UTC, within the years a database stores (the pages' MomentField rule)."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("Enter a date and time between the years 1 and 9999 (UTC).") from None


def storable(value: str) -> str:
    """Text every store accepts: no NUL and no lone surrogate (JSON can carry both; a page's form cannot)."""
    if "\x00" in value:
        raise ValueError("Text may not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode (no lone surrogates).") from None
    return value


Text = Annotated[str, AfterValidator(storable)]


class ActivityTypeOut(Schema):
    code: str = Field(examples=["lot.created"])
    label: str = Field(examples=["Lot created"])
    category: str
    description: str
    data_schema: dict[str, Any] = Field(description="The JSON Schema (2020-12) of the event's `data`.")
    sample: dict[str, Any] = Field(description="A sample `data` (what Test Webhook sends).")


class HeaderIn(Schema):
    name: Text = Field(max_length=200)
    value: Text = Field(max_length=2000, description="For a secret header, `********` keeps the stored value.")
    secret: bool = False


class HeaderOut(Schema):
    name: str
    value: str = Field(description="`********` for a secret value.")
    secret: bool


class SubscriptionIn(Schema):
    url: Text = Field(max_length=MAX_URL_LENGTH, examples=["https://erp.example.com/hooks"])
    activity_types: list[Text] = Field(min_length=1, max_length=100, examples=[["lot.created"]])
    description: Text = Field("", max_length=200)
    timeout_seconds: int | None = Field(
        None, ge=TIMEOUT_MIN, le=TIMEOUT_MAX,
        description="The hard deadline of each request to this endpoint, in seconds; null: the server's default.")
    max_per_second: int | None = Field(
        None, ge=RATE_MIN, le=RATE_MAX, description="At most this many deliveries a second; null: no limit.")
    ordered: bool = Field(False, description="Deliver in order: one at a time, in the order events were recorded.")
    allow_duplicate_url: bool = Field(
        False, description="Another live webhook of the organisation has this URL: create it anyway.")


class SubscriptionPatch(Schema):
    url: Text | None = Field(None, max_length=MAX_URL_LENGTH)
    activity_types: list[Text] | None = Field(None, min_length=1, max_length=100)
    description: Text | None = Field(None, max_length=200)
    custom_headers: list[HeaderIn] | None = Field(None, max_length=MAX_HEADERS + 1)
    timeout_seconds: int | None = Field(
        None, ge=TIMEOUT_MIN, le=TIMEOUT_MAX,
        description="The hard deadline of each request to this endpoint, in seconds; null (sent): the "
                    "server's default.")
    max_per_second: int | None = Field(
        None, ge=RATE_MIN, le=RATE_MAX, description="At most this many deliveries a second; null (sent): no limit.")
    ordered: bool | None = Field(None, description="Deliver in order (sent as null: left as it is).")
    allow_duplicate_url: bool = False

    def controls(self) -> dict:
        """The receiver controls this request sets: {field: value} of those sent (a null ordered is not sent)."""
        names = ("timeout_seconds", "max_per_second", "ordered")
        sent = {f: getattr(self, f) for f in names if f in self.model_fields_set}
        if sent.get("ordered", False) is None:
            del sent["ordered"]
        return sent


class SubscriptionOut(Schema):
    id: uuid.UUID
    url: str
    description: str
    activity_types: list[str]
    state: Literal["active", "paused"]
    paused_reason: str
    paused_at: datetime | None
    custom_headers: list[HeaderOut]
    timeout_seconds: int | None = Field(description="null: the server's default timeout.")
    max_per_second: int | None = Field(description="null: no rate limit.")
    ordered: bool
    secret_rotated_at: datetime | None
    old_secret_signs_until: datetime | None = Field(description="A planned rotation: the old secret signs too.")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_activity_types(obj) -> list[str]:
        return [t.activity_type for t in obj.activity_types.all()]

    @staticmethod
    def resolve_custom_headers(obj) -> list[dict]:
        return obj.shown_headers


class SubscriptionWithSecret(SubscriptionOut):
    secret: str = Field(description="The signing secret (whsec_...): shown here once, never again.")


class SecretOut(Schema):
    secret: str = Field(description="The new signing secret: shown here once, never again.")
    old_secret_signs_until: datetime | None


class RegenerateIn(Schema):
    overlap_hours: Literal[0, 1, 6, 24] = Field(
        0, description="0: the old secret stops at once; else it also signs for this many hours.")


class DeletedOut(Schema):
    cancelled: int = Field(description="Unfinished deliveries cancelled.")


class ResumedOut(Schema):
    released: int = Field(description="Held deliveries now being sent, oldest first.")


class TestIn(Schema):
    activity_type: Text = Field(max_length=64, examples=["lot.created"])
    data: dict[str, Any] | None = Field(None, description="Checked against the type's schema; the sample if absent.")


class EventOut(Schema):
    id: str = Field(examples=["evt_3f0c2b6e9a1d4c0e8b7f5a2d1c9e8f70"])
    type: str
    created_at: datetime
    test: bool = False


class DeliveryOut(Schema):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: str
    activity_type: str
    state: DeliveryState
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    created_at: datetime
    completed_at: datetime | None

    @staticmethod
    def resolve_event_id(obj) -> str:
        return f"evt_{obj.event_id.hex}"


class AttemptOut(Schema):
    number: int
    url: str
    started_at: datetime
    duration_ms: int
    request_headers: dict[str, Any] = Field(description="As sent; secret custom header values masked.")
    status_code: int | None
    response_headers: dict[str, Any]
    response_body: str = Field(description="As stored: capped, with \\xNN escapes for bytes that are not text.")
    response_truncated: bool
    error_kind: str
    error_message: str


class DeliveryDetail(DeliveryOut):
    attempts: list[AttemptOut]

    @staticmethod
    def resolve_attempts(obj) -> list:
        return list(obj.attempts.order_by("number"))


class DeliveryPage(Schema):
    data: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next, older page; null on the last.")


class DeliveryFilters(Schema):
    state: DeliveryState | None = None
    activity_type: Text | None = Field(None, max_length=64)
    event_id: Text | None = Field(None, max_length=100, description="evt_ and 32 hex digits.")
    since: AwareDatetime | None = Field(None, description="Created at or after (ISO 8601 with a zone).")
    until: AwareDatetime | None = Field(None, description="Created before (ISO 8601 with a zone).")
    cursor: Text | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=100)

    _utc = field_validator("since", "until")(_in_utc)


class RecoverIn(Schema):
    since: AwareDatetime = Field(description="Failed deliveries created at or after this moment are sent again.")

    _utc = field_validator("since")(_in_utc)


class CountOut(Schema):
    count: int


class RedeliverOut(Schema):
    redelivered: bool = Field(description="False while the delivery is unfinished (pending or held).")


class ActivityIn(Schema):
    type: Text = Field(max_length=64, examples=["lot.created"])
    data: dict[str, Any] = Field(examples=[{"lot_id": "LOT-1"}])


class BatchIn(Schema):
    events: list[ActivityIn] = Field(min_length=1, max_length=100)


class IngestedOut(Schema):
    id: str = Field(examples=["evt_3f0c2b6e9a1d4c0e8b7f5a2d1c9e8f70"])
    type: str
    created_at: datetime
    replayed: bool = Field(description="True when the Idempotency-Key had already recorded this event.")


class BatchOut(Schema):
    events: list[IngestedOut]


class EventDeliveriesOut(Schema):
    event: EventOut
    deliveries: list[DeliveryOut]
