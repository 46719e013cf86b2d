"""Alert emails to an organisation's admins: an endpoint started failing, was paused automatically, or lost
deliveries (they failed for good: every retry used).

Sent by the worker that saw it happen, after the attempt committed (delivery.signals).
"Failing" goes at most once per endpoint every ALERT_EVERY, claimed in the database
so that two workers, or a breaker that opens again after each failed probe, send one.
A paused endpoint is told each time it is paused (it stays paused until someone acts).
An email that cannot be sent is logged and, for "failing", its claim given back, so
the next opening of the breaker tries again; delivery itself never waits on it for
longer than EMAIL_TIMEOUT.

Lost deliveries are told in a digest: the sender's signal only notes the first one not yet told
(`alert_lost_noted`, one small update); a periodic task (`alerts_lost_send`) emails each endpoint
with something to tell, at most once every LOST_EVERY, with the count and the first event ids.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from alerts.failure_lines import failure_lines
from alerts.models import AlertPreference, EndpointAlert
from alerts.selectors import alert_recipients, last_failed_attempt, lost_deliveries
from delivery.models import EndpointHealth, webhook_id_for
from subscriptions.models import Subscription

logger = logging.getLogger(__name__)

ALERT_EVERY = timedelta(hours=4)
LOST_EVERY = timedelta(hours=1)
LOST_IDS_SHOWN = 10  # event ids listed in a digest; the count says how many in all


def site_link(path: str) -> str:
    """Return the absolute address of a path of this site (SITE_URL + path)."""
    return settings.SITE_URL.rstrip("/") + path


def alert_endpoint_failing(*, subscription: Subscription, reason: str) -> int:
    """Email the admins that the endpoint's breaker opened, unless they were told within ALERT_EVERY.

    Return how many emails were sent.
    """
    if subscription.is_deleted:
        return 0
    now = timezone.now()
    if not _claim_failing(subscription, now):
        return 0
    context = {"health": EndpointHealth.objects.filter(subscription=subscription).first(),
               "every_hours": int(ALERT_EVERY.total_seconds() // 3600)}
    sent = _send(subscription, kind="failing", reason=reason, extra=context)
    if sent is None:  # give the claim back: the next opening of the breaker tries again
        EndpointAlert.objects.filter(subscription=subscription, failing_sent_at=now).update(failing_sent_at=None)
    return sent or 0


def alert_endpoint_auto_paused(*, subscription: Subscription, reason: str) -> int:
    """Email the admins that the subscription was paused automatically; return how many emails were sent."""
    if subscription.is_deleted:
        return 0
    EndpointAlert.objects.update_or_create(subscription=subscription,
                                           defaults={"auto_paused_sent_at": timezone.now()})
    return _send(subscription, kind="auto_paused", reason=reason, extra={}) or 0


def alert_lost_noted(*, subscription_id) -> None:
    """Note that deliveries of the endpoint failed for good: the next digest tells them (two small statements)."""
    now = timezone.now()
    EndpointAlert.objects.bulk_create([EndpointAlert(subscription_id=subscription_id, lost_since=now)],
                                      ignore_conflicts=True)
    EndpointAlert.objects.filter(subscription_id=subscription_id, lost_since__isnull=True).update(lost_since=now)


def alerts_lost_send(*, now: datetime | None = None) -> int:
    """Email the digest of each endpoint with lost deliveries to tell and none told within LOST_EVERY; return emails."""
    now = now or timezone.now()
    due = (EndpointAlert.objects.filter(lost_since__isnull=False)
           .filter(Q(lost_sent_at__isnull=True) | Q(lost_sent_at__lte=now - LOST_EVERY))
           .values_list("subscription_id", flat=True))
    return sum(alert_endpoint_lost(subscription=s, now=now)
               for s in Subscription.objects.select_related("organisation").filter(id__in=list(due)))


def alert_endpoint_lost(*, subscription: Subscription, now: datetime) -> int:
    """Email the admins the deliveries of the endpoint that failed for good since its last digest; return emails sent.

    The digest is claimed in the database (two workers send one); a failed email gives the claim back.
    """
    alert = EndpointAlert.objects.filter(subscription=subscription).first()
    if alert is None or alert.lost_since is None:
        return 0
    previous, since = alert.lost_sent_at, alert.lost_since
    claimed = (EndpointAlert.objects.filter(subscription=subscription, lost_since=since)
               .filter(Q(lost_sent_at__isnull=True) | Q(lost_sent_at__lte=now - LOST_EVERY))
               .update(lost_sent_at=now, lost_since=None))
    if not claimed:
        return 0
    # From the one noted first (a moment before: recorded and noted are not one instant), never again what
    # the last digest told (it listed everything finished by its own time).
    start = since - timedelta(seconds=5)
    lost = lost_deliveries(subscription=subscription, since=max(start, previous) if previous else start, until=now)
    if subscription.is_deleted or not lost.count:
        return 0
    sent = _send(subscription, kind="lost", reason="", extra={
        "lost": lost, "event_ids": [webhook_id_for(i) for i in lost.event_ids[:LOST_IDS_SHOWN]],
        "recover_link": site_link(reverse("console:subscription_recover", args=[subscription.id])
                                  + f"?since={lost.first_created:%Y-%m-%dT%H:%M}"),
    })
    if sent is None:  # give the claim back: the next run tries again
        EndpointAlert.objects.filter(subscription=subscription, lost_sent_at=now).update(
            lost_sent_at=previous, lost_since=since)
    return sent or 0


def alert_preference_set(*, membership, email_endpoint_alerts: bool) -> AlertPreference:
    """Turn this member's alert emails on or off; return the stored preference."""
    preference, _ = AlertPreference.objects.update_or_create(
        membership=membership, defaults={"email_endpoint_alerts": email_endpoint_alerts})
    return preference


def _claim_failing(subscription: Subscription, now: datetime) -> bool:
    """Take the right to send the "failing" email now; return False if it went within ALERT_EVERY."""
    EndpointAlert.objects.bulk_create([EndpointAlert(subscription=subscription)], ignore_conflicts=True)
    return bool(
        EndpointAlert.objects.filter(subscription=subscription)
        .filter(Q(failing_sent_at__isnull=True) | Q(failing_sent_at__lte=now - ALERT_EVERY))
        .update(failing_sent_at=now)
    )


def _send(subscription: Subscription, *, kind: str, reason: str, extra: dict) -> int | None:
    """Send one email per recipient (none sees the others' addresses); return how many, or None on failure."""
    recipients = alert_recipients(organisation=subscription.organisation)
    if not recipients:
        logger.info("No admin of %s wants %s alerts", subscription.organisation_id, kind)
        return 0
    context = {
        "subscription": subscription, "organisation": subscription.organisation, "reason": reason,
        # What failed, in our words; the endpoint's own words only quoted and labelled (alerts.failure_lines).
        "failure": failure_lines(last_failed_attempt(subscription=subscription), recorded=reason),
        # The webhook's page: it opens in the webhook's organisation, whichever the admin last worked in.
        "link": site_link(reverse("console:subscription_detail", args=[subscription.id])),
        "settings_link": site_link(reverse("console:notifications")), **extra,
    }
    # Plain text: the .txt templates turn autoescaping off, so "&" and "<" stay as they are.
    subject = " ".join(render_to_string(f"alerts/email/{kind}_subject.txt", context).split())
    body = render_to_string(f"alerts/email/{kind}.txt", context)
    messages = [EmailMessage(subject=subject, body=body, to=[address]) for address in recipients]
    try:
        return get_connection().send_messages(messages) or 0
    except Exception:  # noqa: BLE001 - a mail server's trouble must not stop delivery
        logger.exception("Could not email the %s alert of %s", kind, subscription.public_id)
        return None
