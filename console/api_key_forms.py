"""Administration > API keys: the form that creates a key."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from api.models import ApiKey

EXPIRIES = [("", "Never"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="What uses the key: “ERP sync”, “LIMS ingest”.")
    scopes = forms.MultipleChoiceField(
        label="Scopes", choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=["read"],
        error_messages={"required": "Choose at least one scope."})
    expires = forms.ChoiceField(label="Expires", choices=EXPIRIES, required=False)

    def expires_at(self):
        """Return the chosen expiry as a moment, or None for a key that does not expire."""
        days = self.cleaned_data.get("expires")
        return timezone.now() + timedelta(days=int(days)) if days else None

    def add_service_error(self, exc) -> None:
        """Show a service's ValidationError at the form's fields (expires_at is the expires field)."""
        for field, messages in exc.message_dict.items():
            name = {"expires_at": "expires"}.get(field, field)
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
