"""The create and edit form's custom header rows: name / value / secret rows under the webhook's fields.

A secret value is never put back in the page: its row shows the mask, and the mask
posted back keeps the stored value (subscriptions.custom_headers). Empty rows are ignored.
"Add header" posts the form back with ADD_HEADER: it comes back as it was, with one more row.
"""

from django import forms
from django.core.exceptions import ValidationError

from console.forms import SubscriptionForm
from subscriptions.custom_headers import MASK, MAX_HEADERS, MAX_NAME, headers_clean, trimmed
from subscriptions.models import Subscription

BLANK_ROWS = 1
ADD_HEADER = "add_header"  # the name of the "Add header" button


class SubscriptionEditForm(SubscriptionForm):
    """Edit: the webhook's fields and its custom headers (header_name_N, header_value_N, header_secret_N)."""

    def __init__(self, *args, stored_headers: list[dict], rows: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.stored_headers = stored_headers or []
        self.posted_rows = self._posted_rows()
        posted = sum(1 for key in (self.data or {}) if key.startswith("header_name_"))
        self.row_count = min(MAX_HEADERS, max(len(self.stored_headers) + BLANK_ROWS, posted, rows))
        for i in range(self.row_count):
            stored = self.stored_headers[i] if i < len(self.stored_headers) else {}
            self.fields[f"header_name_{i}"] = forms.CharField(
                label="Name", required=False, max_length=MAX_NAME + 1, initial=stored.get("name", ""),
                widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                              "placeholder": "X-Api-Key" if i == 0 else ""}))
            # strip=False: Python's strip() also removes U+0085 and U+00A0; the value's rule trims only what HTTP does.
            self.fields[f"header_value_{i}"] = forms.CharField(
                label="Value", required=False, strip=False,
                initial=MASK if stored.get("secret") else stored.get("value", ""),
                widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
            self.fields[f"header_secret_{i}"] = forms.BooleanField(
                label="Secret", required=False, initial=bool(stored.get("secret")))

    @classmethod
    def row_added(cls, data, *, stored_headers: list[dict]) -> "SubscriptionEditForm":
        """Return the posted form unbound (no errors yet: nothing was submitted), with one more header row."""
        rows = sum(1 for key in data if key.startswith("header_name_")) + 1
        initial = {key: data.get(key) for key in data if key not in ("csrfmiddlewaretoken", ADD_HEADER)}
        initial["activity_types"] = data.getlist("activity_types")
        initial.update({f"header_secret_{i}": f"header_secret_{i}" in data for i in range(rows)})
        return cls(initial=initial, stored_headers=stored_headers, rows=rows)

    @property
    def can_add_header(self) -> bool:
        return self.row_count < MAX_HEADERS

    @classmethod
    def for_subscription(cls, subscription: Subscription, data=None) -> "SubscriptionEditForm":
        form = SubscriptionForm.for_subscription(subscription)
        return cls(data=data, initial=form.initial, stored_headers=subscription.custom_headers)

    def _posted_rows(self) -> int:
        """Return how many rows were posted filled in, whatever their numbers (a tampered form may send more)."""
        filled = set()
        for key in self.data or {}:
            for prefix in ("header_name_", "header_value_"):
                if key.startswith(prefix) and trimmed(self.data.get(key)):
                    filled.add(key.removeprefix(prefix))
        return len(filled)

    def _rows(self) -> list[tuple[int, dict]]:
        """Return (row number, entry) of the filled rows, as posted."""
        rows = []
        for i in range(self.row_count):
            entry = {"name": trimmed(self.cleaned_data.get(f"header_name_{i}", "")),
                     "value": trimmed(self.cleaned_data.get(f"header_value_{i}", "")),
                     "secret": self.cleaned_data.get(f"header_secret_{i}", False)}
            if entry["name"] or entry["value"]:
                rows.append((i, entry))
        return rows

    def clean(self):
        data = super().clean()
        if self.posted_rows > MAX_HEADERS:
            # More rows than the form ever shows: refuse the lot rather than keep the first MAX_HEADERS.
            self.add_error(None, f"At most {MAX_HEADERS} custom headers: {self.posted_rows} were sent. Nothing was "
                                 "saved; remove the extra ones.")
        seen = set()
        for i, entry in self._rows():
            lower = entry["name"].lower()
            if lower and lower in seen:
                self.add_error(f"header_name_{i}", f"{entry['name']} is given twice.")
                continue
            seen.add(lower)
            try:
                headers_clean(headers=[entry], previous=self.stored_headers)
            except ValidationError as exc:
                for message in exc.message_dict["custom_headers"]:
                    field = "value" if "value" in message.lower() else "name"
                    self.add_error(f"header_{field}_{i}", message)
        data["custom_headers"] = [entry for _, entry in self._rows()]
        return data

    def headers_changed(self) -> bool:
        """Return True if the posted headers differ from the stored ones (a kept secret is no change)."""
        def key(h, posted):
            kept = h.get("secret") and (not posted or h["value"] in ("", MASK))
            return (h["name"], bool(h.get("secret")), None if kept else h["value"])

        return ([key(h, True) for h in self.cleaned_data["custom_headers"]]
                != [key(h, False) for h in self.stored_headers])

    def header_rows(self) -> list[dict]:
        """Return the rows to render: each row's three bound fields and its errors."""
        rows = []
        for i in range(self.row_count):
            errors = [*self.errors.get(f"header_name_{i}", []), *self.errors.get(f"header_value_{i}", [])]
            for part in ("name", "value"):
                if f"header_{part}_{i}" in self.errors:
                    self.fields[f"header_{part}_{i}"].widget.attrs["aria-describedby"] = f"header-{i}-error"
            rows.append({"number": i + 1, "name": self[f"header_name_{i}"], "value": self[f"header_value_{i}"],
                         "secret": self[f"header_secret_{i}"], "errors": errors, "error_id": f"header-{i}-error"})
        return rows
