from django import forms


class NotificationsForm(forms.Form):
    """The account's Notifications page: where alert emails go, and for which of the user's organisations."""

    email = forms.EmailField(label="Email address", required=False, max_length=254,
                             help_text="Alerts are sent here. Leave empty to receive none.",
                             widget=forms.EmailInput(attrs={"autocomplete": "email", "spellcheck": "false"}))

    def __init__(self, *args, memberships: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.memberships = memberships
        for membership in memberships:
            self.fields[self.field_name(membership)] = forms.BooleanField(
                label=membership.organisation.name, required=False)

    @staticmethod
    def field_name(membership) -> str:
        return f"alerts_{membership.organisation_id.hex}"

    def switches(self) -> list[tuple]:
        """Return (membership, its bound checkbox) for each of the user's organisations, by name."""
        return [(m, self[self.field_name(m)]) for m in self.memberships]

    def wanted(self) -> dict:
        """Return {membership: whether its alert emails are on}, as posted."""
        return {m: self.cleaned_data[self.field_name(m)] for m in self.memberships}
