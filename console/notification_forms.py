from django import forms


class NotificationsForm(forms.Form):
    """The account's Notifications page: where alert emails go, and whether they go at all."""

    email = forms.EmailField(label="Email address", required=False, max_length=254,
                             help_text="Alerts are sent here. Leave empty to receive none.",
                             widget=forms.EmailInput(attrs={"autocomplete": "email", "spellcheck": "false"}))
    email_endpoint_alerts = forms.BooleanField(
        label="Email me when a webhook endpoint starts failing or is paused automatically", required=False,
        help_text="At most one “failing” email per endpoint every 4 hours, and one each time it is paused.")
