"""The Create Webhook / edit form: "Endpoint URL", "Activity Types", an optional description."""

import json
import re
import uuid
from datetime import UTC, timedelta

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from delivery.bulk import BULK_LIMIT
from delivery.models import Delivery
from subscriptions.activity_data import json_text_depth_check
from subscriptions.activity_types import by_category, choices, get_activity_type
from subscriptions.exceptions import InvalidActivityData
from subscriptions.models import RATE_MAX, RATE_MIN, TIMEOUT_MAX, TIMEOUT_MIN, Subscription
from subscriptions.validators import validate_endpoint_url


def _whole_number(label: str, low: int, high: int, *, invalid: str, too_low: str, too_high: str) -> forms.IntegerField:
    """Return an optional whole-number field from `low` to `high` with its three messages.

    A text input: the browser's own number check would pre-empt our clearer messages.
    """
    return forms.IntegerField(label=label, required=False, min_value=low, max_value=high,
                              error_messages={"invalid": invalid, "min_value": too_low, "max_value": too_high})


class SubscriptionForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        # No max_length: a maxlength attribute would cut a pasted URL silently; the validator refuses it instead.
        validators=[validate_endpoint_url],
        error_messages={"required": "Enter the endpoint URL."},
        help_text="The URL must use HTTPS.",
        # A text input, not type="url": the browser's own check would pre-empt our clearer messages.
        widget=forms.TextInput(attrs={"inputmode": "url", "placeholder": "https://example.com/webhooks",
                                      "autocomplete": "off", "spellcheck": "false"}),
    )
    activity_types = forms.MultipleChoiceField(
        label="Activity Types",
        choices=choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Select at least one activity type.",
            "invalid_choice": "Unknown activity type: %(value)s.",
        },
    )
    description = forms.CharField(
        label="Description", required=False, max_length=200,
        help_text="Optional: what this endpoint is for, shown on its card.",
    )
    timeout_seconds = _whole_number(
        "Timeout (seconds)", TIMEOUT_MIN, TIMEOUT_MAX,
        invalid=f"Enter a whole number of seconds from {TIMEOUT_MIN} to {TIMEOUT_MAX}.",
        too_low=f"The timeout must be at least {TIMEOUT_MIN} second.",
        too_high=f"The timeout can be at most {TIMEOUT_MAX} seconds.")
    max_per_second = _whole_number(
        "Maximum deliveries per second", RATE_MIN, RATE_MAX,
        invalid=f"Enter a whole number from {RATE_MIN} to {RATE_MAX:,}, or leave it empty.",
        too_low=f"The limit must be at least {RATE_MIN} delivery per second.",
        too_high=f"The limit can be at most {RATE_MAX:,} deliveries per second.")
    ordered = forms.BooleanField(label="Deliver in order", required=False)
    confirm_duplicate = forms.BooleanField(
        label="Yes, add another webhook to this URL", required=False,
        help_text="The organisation already has a webhook to this URL.",
    )

    duplicate_of: Subscription | None = None  # set by the view when the URL is already in use

    @classmethod
    def for_subscription(cls, subscription: Subscription, data=None) -> "SubscriptionForm":
        initial = {
            "url": subscription.url,
            "description": subscription.description,
            "activity_types": [t.activity_type for t in subscription.activity_types.all()],
            "timeout_seconds": subscription.timeout_seconds,
            "max_per_second": subscription.max_per_second,
            "ordered": subscription.ordered,
        }
        return cls(data=data, initial=initial)

    def default_timeout(self) -> str:
        """Return the WEBHOOKS_TIMEOUT setting as the form says it ("10")."""
        return f"{settings.WEBHOOKS_TIMEOUT:g}"

    def controls(self) -> dict:
        """Return what the receiver asked for, as subscription_create and subscription_update take it."""
        return {"timeout_seconds": self.cleaned_data.get("timeout_seconds"),
                "max_per_second": self.cleaned_data.get("max_per_second"),
                "ordered": bool(self.cleaned_data.get("ordered"))}

    def grouped_activity_types(self) -> list[dict]:
        """Return the six categories, each with its types and whether each is checked now."""
        if self.is_bound:
            selected = set(self.data.getlist("activity_types")) if hasattr(self.data, "getlist") else set()
        else:
            selected = set(self.initial.get("activity_types") or [])
        return [
            {
                "name": category,
                "slug": category.lower().replace(" & ", "-").replace(" ", "-"),
                "types": [{"code": t.code, "label": t.label, "description": t.description,
                           "checked": t.code in selected} for t in types],
            }
            for category, types in by_category()
        ]

    def error_summary(self) -> list[tuple[str, str]]:
        """Return (anchor, message) for every error, in the order of the form, for the summary at its top."""
        anchors = {"url": "#id_url", "activity_types": "#activity-types", "description": "#id_description"}
        return [(anchors.get(name) or (f"#{self[name].id_for_label}" if name in self.fields else "#form-top"), message)
                for name in [None, *self.fields] for message in self.errors.get(name or "__all__", [])]

    def add_service_error(self, error: ValidationError) -> None:
        """Show a service's ValidationError at the field it names, or above the form."""
        if hasattr(error, "error_dict"):
            for field, messages in error.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        else:
            self.add_error(None, error)


EVENT_ID = re.compile(r"^(?:evt_)?([0-9a-f]{32})$")
# ISO, and the pages' own way of writing a time ("2 Dec 2026, 16:39:42"): a time copied from a page reads back.
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d",
                    "%d %b %Y, %H:%M:%S", "%d %b %Y, %H:%M", "%d %b %Y %H:%M:%S", "%d %b %Y %H:%M"]


class MomentField(forms.DateTimeField):
    """A moment as an aware datetime in UTC, within the years a database stores.

    Django's DateTimeField reads ISO 8601 with a zone before its input formats, so any of them takes
    9999-12-31T23:59:59-14:00, which is in the year 10000 in UTC: refused here, not at the query.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Enter a date and time between the years 1 and 9999.") from None


def _utc_input(**attrs) -> forms.DateTimeInput:
    # datetime-local has no zone: the label says UTC, and the server reads it as UTC (TIME_ZONE).
    return forms.DateTimeInput(attrs={"type": "datetime-local", **attrs}, format="%Y-%m-%dT%H:%M")


class LogFilterForm(forms.Form):
    """The Delivery Log's search: a full event id, state, activity type and a date range (UTC), combined.

    An unknown state or type is ignored, as a stale bookmark should still show the log;
    an event id or a date that cannot be read is an error at its field.
    """

    q = forms.CharField(label="Event id", required=False, max_length=100,
                        widget=forms.TextInput(attrs={"placeholder": "evt_…", "spellcheck": "false",
                                                      "autocomplete": "off"}))
    state = forms.CharField(required=False)
    type = forms.CharField(required=False)
    since = MomentField(label="From (UTC)", required=False, input_formats=DATETIME_FORMATS,
                                widget=_utc_input(), error_messages={"invalid": "Enter a date and time."})
    until = MomentField(label="To (UTC)", required=False, input_formats=DATETIME_FORMATS,
                                widget=_utc_input(), error_messages={"invalid": "Enter a date and time."})

    def __init__(self, data=None, *, codes: list[str]):
        super().__init__(data=data if data is not None else {})
        self.codes = codes

    def clean_q(self) -> uuid.UUID | None:
        raw = self.cleaned_data["q"].strip().lower().replace("-", "")
        if not raw:
            return None
        match = EVENT_ID.match(raw)
        if not match:
            raise ValidationError("Enter a whole event id: evt_ followed by 32 letters and digits.")
        return uuid.UUID(hex=match.group(1))

    def clean_state(self) -> str:
        state = self.cleaned_data["state"]
        return state if state in Delivery.State.values else ""

    def clean_type(self) -> str:
        code = self.cleaned_data["type"]
        return code if code in self.codes else ""

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error("until", "Choose a time after the start of the range.")
        return data

    def selector_kwargs(self) -> dict:
        """Return the filters as delivery_log_queryset's keywords (only the valid ones)."""
        self.is_valid()  # cleans; what could not be read is left out
        data = self.cleaned_data
        return {
            "event_id": data.get("q"), "state": data.get("state") or None, "activity_type": data.get("type") or None,
            "since": data.get("since"), "until": data.get("until"),
        }

    @property
    def active(self) -> bool:
        return any(self.data.get(name) for name in ("q", "state", "type", "since", "until"))

    def states(self) -> list[tuple[str, str]]:
        return Delivery.State.choices

    def types(self) -> list[tuple[str, str]]:
        return [(c, get_activity_type(c).label) for c in self.codes if get_activity_type(c)]

    def describe(self) -> str:
        """Return the filters in words, for the bulk confirmation ("failed, lot.created, since ...")."""
        kwargs = self.selector_kwargs()
        parts = []
        if kwargs["event_id"]:
            parts.append(f"event evt_{kwargs['event_id'].hex}")
        if kwargs["state"]:
            parts.append(f"state {Delivery.State(kwargs['state']).label}")
        if kwargs["activity_type"]:
            parts.append(f"type {kwargs['activity_type']}")
        if kwargs["since"]:
            parts.append(f"from {kwargs['since'].astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        if kwargs["until"]:
            parts.append(f"until {kwargs['until'].astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        return ", ".join(parts) or "all deliveries"


class BulkConfirmForm(forms.Form):
    """What the Bulk redeliver page showed and the admin confirmed: how many deliveries, counted as of when."""

    confirmed = forms.IntegerField(min_value=0, max_value=BULK_LIMIT)
    as_of = MomentField()


class RecoverForm(forms.Form):
    """When to retry failed deliveries from ("Retry failed deliveries since ...")."""

    since = MomentField(
        label="Retry failed deliveries since (UTC)",
        help_text="A date and time in UTC. The next page says how many failed deliveries created since then "
                  "will be sent again, before anything is sent; each keeps its event id.",
        widget=_utc_input(),
        input_formats=DATETIME_FORMATS,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["since"] = (timezone.now() - timedelta(days=1)).replace(second=0, microsecond=0)


class TestForm(forms.Form):
    """Test Webhook: one of the subscription's types and, when edited, the payload's `data` as JSON."""

    activity_type = forms.ChoiceField(label="Activity type", error_messages={
        "invalid_choice": "Choose one of this webhook's activity types.",
        "required": "Choose one of this webhook's activity types."})
    data = forms.CharField(label="Payload data (JSON)", required=False, strip=False,
                           widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "code-input"}))

    MAX_CHARS = 64 * 1024

    def __init__(self, data=None, *, codes: list[str], editing: bool):
        # The GET page is bound too (its ?activity_type=), so a bad choice is shown, not raised.
        super().__init__(data=data if data is not None else {})
        self.editing = editing
        self.fields["activity_type"].choices = [(c, get_activity_type(c).label) for c in codes]
        self.codes = codes

    def chosen_type(self) -> str:
        code = self.data.get("activity_type")
        return code if code in self.codes else (self.codes[0] if self.codes else "")

    def initial_data_text(self) -> str:
        """Return the payload text to show: what was posted, or the chosen type's sample, indented."""
        if self.editing and "data" in self.data:
            return self.data["data"]
        kind = get_activity_type(self.chosen_type())
        return json.dumps(kind.sample, indent=2, ensure_ascii=False) if kind else "{}"

    def clean_data(self):
        text = self.cleaned_data.get("data", "")
        if not self.editing:
            return None  # the one-click Test Webhook of the detail page: the type's sample
        if len(text) > self.MAX_CHARS:
            raise ValidationError(f"The payload must be at most {self.MAX_CHARS:,} characters.")
        try:
            # Before parsing: json.loads recurses once per bracket (RecursionError about 1,000 deep).
            json_text_depth_check(text)
        except InvalidActivityData as exc:
            raise ValidationError(str(exc)) from None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"This is not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise ValidationError("The payload data must be a JSON object ({ ... }).")
        return value

    def add_service_error(self, error: ValidationError) -> None:
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)


class RegenerateForm(forms.Form):
    """Regenerate Secret's one choice: when the old secret stops (at once, the seed's rule, by default)."""

    OVERLAPS = [("0", "At once: only the new secret signs from the next delivery"),
                ("1", "Keep signing with the old secret too, for 1 hour"),
                ("6", "Keep signing with the old secret too, for 6 hours"),
                ("24", "Keep signing with the old secret too, for 24 hours")]

    overlap_hours = forms.TypedChoiceField(
        label="When does the old secret stop working?", choices=OVERLAPS, coerce=int, initial="0",
        widget=forms.RadioSelect, required=False, empty_value=0,
        error_messages={"invalid_choice": "Choose when the old secret stops: at once, or after 1, 6 or 24 hours."})

    def overlap(self) -> timedelta | None:
        """Return how long the old secret also signs, or None (it stops at once)."""
        hours = self.cleaned_data["overlap_hours"]
        return timedelta(hours=hours) if hours else None
