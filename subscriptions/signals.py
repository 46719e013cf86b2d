"""Signals only: receivers are connected in AppConfig.ready()."""

from django.dispatch import Signal

# Sent by domain code when something happened in an organisation.
# Arguments: organisation, activity_type (a code of the catalogue), data (a
# JSON object), and optionally idempotency_key. The receiver in `delivery`
# writes the outbox in the caller's transaction and returns the Event.
activity_occurred = Signal()
