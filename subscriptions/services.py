"""Writes of the subscription side. Each returns what the caller needs to show."""

from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from subscriptions import signals
from subscriptions.activity_data import activity_data_check
from subscriptions.activity_schemas import data_validator
from subscriptions.activity_types import ACTIVITY_TYPES, get_activity_type
from subscriptions.custom_headers import headers_clean
from subscriptions.exceptions import InvalidActivityData
from subscriptions.models import SubscribedActivityType, Subscription, TrailEntry, trail_by
from subscriptions.signing_secrets import encrypt_secret, generate_secret

MAX_SECRET_OVERLAP = timedelta(hours=24)


def _told(signal, **kwargs) -> int:
    """Send a subscription signal; return the count its receiver answered (0 when none is connected)."""
    return sum(answer or 0 for _, answer in signal.send(sender=Subscription, **kwargs))


def _clean_activity_types(activity_types: Iterable[str]) -> list[str]:
    codes = list(dict.fromkeys(t.strip() for t in activity_types if t and t.strip()))
    if not codes:
        raise ValidationError({"activity_types": "Select at least one activity type."})
    unknown = [c for c in codes if c not in ACTIVITY_TYPES]
    if unknown:
        raise ValidationError({"activity_types": f"Unknown activity type: {', '.join(unknown)}."})
    return codes


# What a receiver may ask of the sender, as the trail names each (docs/RECEIVING.md).
CONTROLS = {"timeout_seconds": "timeout", "max_per_second": "rate limit", "ordered": "deliver in order"}


def _control_text(field: str, value) -> str:
    """Return a receiver control's value as the trail says it."""
    if field == "timeout_seconds":
        return f"{value} s" if value else "the default"
    if field == "max_per_second":
        return f"{value}/s" if value else "none"
    return "on" if value else "off"


def _trail(subscription: Subscription, action: str, by=None, detail: str = "") -> None:
    TrailEntry.objects.create(subscription=subscription, action=action, detail=detail[:500], **trail_by(by))


@transaction.atomic
def subscription_create(
    *, organisation, url: str, activity_types: Iterable[str], description: str = "", created_by=None,
    timeout_seconds: int | None = None, max_per_second: int | None = None, ordered: bool = False,
) -> tuple[Subscription, str]:
    """Create a subscription; return it and its signing secret (the only time the secret is returned).

    What its receiver asks for: `timeout_seconds`, the endpoint's own timeout (1 to 30; None: the
    WEBHOOKS_TIMEOUT setting); `max_per_second`, its rate limit (1 to 1,000; None: none); `ordered`, one
    delivery at a time in the order of recording.

    `created_by` (and every service's `by`) is a user, None, or an API key (see models.trail_by).
    """
    codes = _clean_activity_types(activity_types)
    secret = generate_secret()
    subscription = Subscription(
        organisation=organisation, url=url.strip(), description=description.strip(),
        secret_encrypted=encrypt_secret(secret), created_by=trail_by(created_by)["actor"],
        timeout_seconds=timeout_seconds, max_per_second=max_per_second, ordered=ordered,
    )
    subscription.full_clean()
    subscription.save()
    SubscribedActivityType.objects.bulk_create(
        SubscribedActivityType(subscription=subscription, activity_type=c) for c in codes
    )
    asked = [f"{name} {_control_text(field, getattr(subscription, field))}" for field, name in CONTROLS.items()
             if getattr(subscription, field)]
    _trail(subscription, TrailEntry.Action.CREATED, created_by,
           "; ".join([f"{subscription.url} for {len(codes)} activity types", *asked]))
    return subscription, secret


@transaction.atomic
def subscription_update(
    *, subscription: Subscription, url: str, activity_types: Iterable[str], description: str | None = None, by=None,
    controls: dict | None = None,
) -> Subscription:
    """Change the endpoint URL, activity types, description and what its receiver asked for; effective for the
    next request.

    `controls`: {field: value} of CONTROLS to set (a missing field is left as it is).
    """
    codes = _clean_activity_types(activity_types)
    changes = []
    url_changed = url.strip() != subscription.url
    if url_changed:
        changes.append(f"URL {subscription.url} → {url.strip()}")
    subscription.url = url.strip()
    if description is not None and description.strip() != subscription.description:
        changes.append("description changed")
        subscription.description = description.strip()
    for field, value in (controls or {}).items():
        if field not in CONTROLS:
            raise ValueError(f"Not a receiver control: {field}")
        before = getattr(subscription, field)
        if value != before:
            changes.append(f"{CONTROLS[field]} {_control_text(field, before)} → {_control_text(field, value)}")
            setattr(subscription, field, value)
    subscription.full_clean()
    subscription.save()
    current = set(subscription.activity_types.values_list("activity_type", flat=True))
    added, removed = set(codes) - current, current - set(codes)
    if removed:
        subscription.activity_types.filter(activity_type__in=removed).delete()
    if added:
        SubscribedActivityType.objects.bulk_create(
            SubscribedActivityType(subscription=subscription, activity_type=c) for c in sorted(added)
        )
    if added:
        changes.append("added " + ", ".join(sorted(added)))
    if removed:
        changes.append("removed " + ", ".join(sorted(removed)))
    if url_changed:
        _told(signals.subscription_url_changed, subscription=subscription, url=subscription.url)
    if changes:  # a save that changed nothing is no activity
        _trail(subscription, TrailEntry.Action.EDITED, by, "; ".join(changes))
    return subscription


@transaction.atomic
def subscription_regenerate_secret(*, subscription: Subscription, by=None, overlap: timedelta | None = None) -> str:
    """Replace the signing secret; return the new one (shown once).

    By default the old secret stops at once (the seed's rule). With `overlap` (at most
    MAX_SECRET_OVERLAP) the old one also signs every delivery until then, so a receiver
    can be moved to the new secret with no gap.
    """
    if overlap is not None and not timedelta(0) < overlap <= MAX_SECRET_OVERLAP:
        raise ValidationError({"overlap": "The old secret can keep signing for up to 24 hours."})
    now = timezone.now()
    secret = generate_secret()
    if overlap:
        subscription.previous_secret_encrypted = subscription.secret_encrypted
        subscription.previous_secret_until = now + overlap
    else:
        subscription.previous_secret_encrypted, subscription.previous_secret_until = "", None
    subscription.secret_encrypted = encrypt_secret(secret)
    subscription.secret_rotated_at = now
    subscription.save(update_fields=["secret_encrypted", "secret_rotated_at", "previous_secret_encrypted",
                                     "previous_secret_until", "updated_at"])
    until = subscription.previous_secret_until
    detail = f"the old secret also signs until {until:%Y-%m-%d %H:%M} UTC" if overlap else ""
    _trail(subscription, TrailEntry.Action.SECRET_REGENERATED, by, detail)
    return secret


@transaction.atomic
def subscription_stop_old_secret(*, subscription: Subscription, by=None) -> bool:
    """End a planned rotation now: only the new secret signs from the next attempt; return False if none ran."""
    stopped = Subscription.objects.filter(id=subscription.id, previous_secret_until__isnull=False).update(
        previous_secret_encrypted="", previous_secret_until=None)
    subscription.refresh_from_db()
    if stopped:
        _trail(subscription, TrailEntry.Action.OLD_SECRET_STOPPED, by, "only the new secret signs from now")
    return bool(stopped)


def subscription_old_secrets_forget(*, now=None) -> int:
    """Delete the previous secret of every planned rotation whose time is up; return how many were deleted.

    The sender stops signing with it at that moment already; this removes it from storage (the
    beat job forget-expired-old-secrets, every 30 s). Each is its own compare-and-swap, so a
    rotation started meanwhile keeps its new previous secret.
    """
    now = now or timezone.now()
    forgotten = 0
    for subscription_id in Subscription.objects.filter(previous_secret_until__lte=now).values_list("id", flat=True):
        with transaction.atomic():
            if Subscription.objects.filter(id=subscription_id, previous_secret_until__lte=now).update(
                    previous_secret_encrypted="", previous_secret_until=None):
                TrailEntry.objects.create(subscription_id=subscription_id, action=TrailEntry.Action.SECRET_REGENERATED,
                                          detail="the old secret's time was up: it was deleted")
                forgotten += 1
    return forgotten


@transaction.atomic
def subscription_set_headers(*, subscription: Subscription, headers: list[dict], by=None) -> Subscription:
    """Replace the custom headers sent on every attempt (validated; secret values encrypted)."""
    subscription.custom_headers = headers_clean(headers=headers, previous=subscription.custom_headers)
    subscription.save(update_fields=["custom_headers", "updated_at"])
    names = ", ".join(h["name"] for h in subscription.custom_headers) or "none"
    _trail(subscription, TrailEntry.Action.EDITED, by, f"custom headers: {names}")
    return subscription


@transaction.atomic
def subscription_pause(*, subscription: Subscription, by=None, reason: str = "", automatic: bool = False) -> None:
    """Pause: pending and later events are held, not sent, until Resume."""
    Subscription.objects.filter(id=subscription.id).update(
        state=Subscription.State.PAUSED, paused_reason=reason[:300], paused_at=timezone.now()
    )
    subscription.refresh_from_db()
    # Retries waiting for their turn are held too, so the card's count is complete.
    _told(signals.subscription_paused, subscription=subscription)
    action = TrailEntry.Action.AUTO_PAUSED if automatic else TrailEntry.Action.PAUSED
    _trail(subscription, action, by, reason)


@transaction.atomic
def subscription_resume(*, subscription: Subscription, by=None) -> int:
    """Resume and send what was held, oldest first; return how many were held."""
    Subscription.objects.filter(id=subscription.id).update(
        state=Subscription.State.ACTIVE, paused_reason="", paused_at=None
    )
    subscription.refresh_from_db()
    released = _told(signals.subscription_resumed, subscription=subscription)
    noun = "delivery" if released == 1 else "deliveries"
    _trail(subscription, TrailEntry.Action.RESUMED, by, f"{released} held {noun} released" if released else "")
    return released


@transaction.atomic
def subscription_delete(*, subscription: Subscription, by=None) -> int:
    """Delete: cancel unfinished deliveries, stop all future ones; return how many were cancelled."""
    locked = Subscription.objects.select_for_update().get(id=subscription.id)
    locked.deleted_at = timezone.now()
    locked.save(update_fields=["deleted_at", "updated_at"])
    cancelled = _told(signals.subscription_deleted, subscription=locked)
    noun = "delivery" if cancelled == 1 else "deliveries"
    _trail(locked, TrailEntry.Action.DELETED, by, f"{cancelled} pending {noun} cancelled")
    return cancelled


def payload_errors(*, activity_type: str, data) -> list[str]:
    """Return why data is not a valid `data` of that type (its JSON Schema), at most six reasons; [] if valid."""
    if not isinstance(data, dict):
        return ["The payload must be a JSON object."]
    errors = sorted(data_validator(activity_type).iter_errors(data), key=lambda e: [str(p) for p in e.path])
    missing = [e.message.split("'")[1] for e in errors if e.validator == "required" and not e.path]
    reasons = [f"{'.'.join(str(p) for p in e.path) or 'data'}: {e.message}"
               for e in errors if not (e.validator == "required" and not e.path)][:5]
    if missing:
        reasons.append(f"data: missing required properties: {', '.join(missing)}")
    return reasons


@transaction.atomic
def subscription_send_test(*, subscription: Subscription, activity_type: str, by=None, data: dict | None = None):
    """Send the type's sample (or `data`, checked against its schema), marked "test": true, to this one; return it."""
    kind = get_activity_type(activity_type)
    if kind is None:
        raise ValidationError({"activity_type": f"Unknown activity type: {activity_type!r}."})
    if data is not None:
        if isinstance(data, dict):
            try:  # strict JSON within the depth limit, before the schema walks it (recursively)
                activity_data_check(data)
            except InvalidActivityData as exc:
                raise ValidationError({"data": str(exc)}) from None
        if errors := payload_errors(activity_type=activity_type, data=data):
            raise ValidationError({"data": errors})
    try:
        answers = signals.activity_occurred.send(
            sender=subscription_send_test, organisation=subscription.organisation, activity_type=activity_type,
            data=kind.sample if data is None else data, is_test=True, subscription=subscription,
        )
    except InvalidActivityData as exc:  # too large, or nested too deeply
        raise ValidationError({"data": str(exc)}) from None
    event = next(answer for _, answer in answers if answer is not None)
    _trail(subscription, TrailEntry.Action.TESTED, by, activity_type)
    return event
