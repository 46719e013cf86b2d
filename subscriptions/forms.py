"""The Create Webhook / edit form: "Endpoint URL", "Activity Types", an optional description."""

from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from subscriptions.activity_types import by_category, choices
from subscriptions.models import Subscription
from subscriptions.validators import MAX_URL_LENGTH, validate_endpoint_url


class SubscriptionForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        max_length=MAX_URL_LENGTH,
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

    @classmethod
    def for_subscription(cls, subscription: Subscription, data=None) -> "SubscriptionForm":
        initial = {
            "url": subscription.url,
            "description": subscription.description,
            "activity_types": [t.activity_type for t in subscription.activity_types.all()],
        }
        return cls(data=data, initial=initial)

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

    def add_service_error(self, error: ValidationError) -> None:
        """Show a service's ValidationError at the field it names, or above the form."""
        if hasattr(error, "error_dict"):
            for field, messages in error.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        else:
            self.add_error(None, error)


class RecoverForm(forms.Form):
    """When to retry failed deliveries from ("Retry failed deliveries since ...")."""

    since = forms.DateTimeField(
        label="Retry failed deliveries since",
        help_text="UTC. Each failed delivery created since then is sent again with its event id.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["since"] = (timezone.now() - timedelta(days=1)).replace(second=0, microsecond=0)
