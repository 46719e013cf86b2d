"""Pruning: finished deliveries, their attempts and events go after the retention period; unfinished never."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from conftest import make_subscription
from delivery import retention
from delivery.charts import closed_hours_summarise
from delivery.models import Attempt, AttemptHour, Delivery, Event, HourSummary
from delivery.retention import deliveries_prune, deliveries_prune_preview
from delivery.tasks import prune_old_deliveries, send_endpoint
from subscriptions.activity import record_activity
from subscriptions.services import subscription_pause

# Outside a test transaction: on PostgreSQL a prune ends with VACUUM, which cannot run inside one.
pytestmark = pytest.mark.django_db(transaction=True)


def _age(delivery, days):
    then = timezone.now() - timedelta(days=days)
    completed_at = then if delivery.completed_at else None
    Delivery.objects.filter(id=delivery.id).update(created_at=then, completed_at=completed_at)
    Event.objects.filter(id=delivery.event_id).update(created_at=then)


retention_tables = [Delivery, Attempt, Event, AttemptHour, HourSummary]


def _last_vacuums(models) -> list:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        return [cursor.execute("SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = %s",
                               [m._meta.db_table]).fetchone()[0] for m in models]


def test_prune_deletes_old_finished_deliveries_in_batches_and_keeps_the_rest(org, receiver, monkeypatch):
    subscription, _ = make_subscription(org, url=receiver.url)
    paused, _ = make_subscription(org, url=receiver.url + "/paused", activity_types=["harvest.recorded"])
    subscription_pause(subscription=paused)
    for i in range(5):
        record_activity(organisation=org, activity_type="lot.created", data={"n": i})
    record_activity(organisation=org, activity_type="harvest.recorded", data={})
    receiver.script.append(500)
    assert send_endpoint(str(subscription.id)) == 5  # the first fails and waits for its retry, four succeed
    retrying, *succeeded = Delivery.objects.filter(subscription=subscription).order_by("created_at")
    held = Delivery.objects.get(subscription=paused)
    old = succeeded[:3]
    for d in [*old, retrying, held]:
        _age(d, 31)  # older than the 30-day default; the last two are unfinished (bad input for the pruner)
    _age(succeeded[3], 29)
    AttemptHour.objects.update(hour=F("hour") - timedelta(days=31))  # the charts' counts of those hours
    hours = AttemptHour.objects.count()
    assert hours >= 1
    # Their summaries, stored by the periodic task 30 days ago, and one of a recent hour that stays.
    closed_hours_summarise(now=timezone.now() - timedelta(days=30))
    summaries = HourSummary.objects.count()
    assert summaries >= 1
    recent = HourSummary.objects.create(subscription=subscription, hour=timezone.now() - timedelta(days=2),
                                        succeeded=1, http_failed=0, no_answer=0, p50_ms=5, p95_ms=5)

    preview = deliveries_prune_preview()
    assert {k: v for k, v in preview.items() if k != "cutoff"} == {
        "deliveries": 3, "attempts": 3, "events": 3, "attempt_hours": hours, "hour_summaries": summaries}
    assert Delivery.objects.count() == 6 and Attempt.objects.count() == 5  # the dry run deleted nothing
    assert AttemptHour.objects.count() == hours

    rests = []
    monkeypatch.setattr(retention.time, "sleep", rests.append)
    before = _last_vacuums(retention_tables) if connection.vendor == "postgresql" else []
    assert deliveries_prune(batch_size=2) == {"deliveries": 3, "events": 3, "attempt_hours": hours,
                                              "hour_summaries": summaries}
    # Each full batch was followed by a rest (the last, short one ends its table): 3 deliveries and 3 events
    # in batches of 2, and the chart rows if there were two or more.
    assert len(rests) >= 2 and all(rest >= 0 for rest in rests)
    if connection.vendor == "postgresql":  # the pruned tables were vacuumed: their space is reusable
        after = _last_vacuums(retention_tables)
        assert all(t is not None and (b is None or t > b) for b, t in zip(before, after, strict=True)), after
    assert list(HourSummary.objects.all()) == [recent]

    assert set(Delivery.objects.values_list("id", flat=True)) == {retrying.id, held.id, succeeded[3].id}
    assert not Attempt.objects.filter(delivery_id__in=[d.id for d in old]).exists()
    assert Attempt.objects.filter(delivery=retrying).count() == 1
    assert set(Event.objects.values_list("id", flat=True)) == {retrying.event_id, held.event_id,
                                                               succeeded[3].event_id}


def test_the_scheduled_task_prunes_and_is_in_the_beat_schedule(org):
    make_subscription(org, activity_types=["harvest.recorded"])
    event = record_activity(organisation=org, activity_type="lot.created", data={})  # no subscriber: no delivery
    Event.objects.filter(id=event.id).update(created_at=timezone.now() - timedelta(days=31))

    assert prune_old_deliveries() == {"deliveries": 0, "events": 1, "attempt_hours": 0, "hour_summaries": 0}
    assert not Event.objects.exists()
    entry = settings.CELERY_BEAT_SCHEDULE["prune-old-deliveries"]
    assert entry["task"] == prune_old_deliveries.name


def test_the_prune_deliveries_command_reports_what_it_deleted(org):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    event = record_activity(organisation=org, activity_type="lot.created", data={})  # no subscriber
    Event.objects.filter(id=event.id).update(created_at=timezone.now() - timedelta(days=3))
    out = StringIO()
    call_command("prune_deliveries", "--days", "7", stdout=out)
    assert out.getvalue().strip() == "Pruned 0 deliveries, 0 events and 0 hourly chart rows."
    call_command("prune_deliveries", "--days", "2", "--dry-run", stdout=out)
    assert out.getvalue().splitlines()[-1].startswith("Dry run: nothing deleted. Would prune 0 deliveries")
    assert "0 attempts, 1 events and 0 hourly chart rows." in out.getvalue().splitlines()[-1]
    assert Event.objects.filter(id=event.id).exists()
    call_command("prune_deliveries", "--days", "2", "--batch-size", "1", stdout=out)
    assert out.getvalue().splitlines()[-1] == "Pruned 0 deliveries, 1 events and 0 hourly chart rows."
    with pytest.raises(CommandError, match="--days must be zero or more"):
        call_command("prune_deliveries", "--days", "-1")  # bad input: a negative period
    with pytest.raises(CommandError, match="--batch-size must be 1 or more"):
        call_command("prune_deliveries", "--batch-size", "0")  # bad input: an empty batch


def test_old_events_of_one_instant_go_in_batches_unless_a_delivery_that_stays_refers_to_them(org, monkeypatch):
    """Bad input for the pruner's walk: seven events older than the period, all of the same instant; two are
    still referred to by held (unfinished) deliveries. Batches of 2 are chosen by time and id alone and each
    DELETE keeps what is referred to: every other event goes, the two stay, and the walk ends."""
    paused, _ = make_subscription(org, activity_types=["harvest.recorded"])
    subscription_pause(subscription=paused)
    staying = [record_activity(organisation=org, activity_type="harvest.recorded", data={"n": i}) for i in range(2)]
    orphans = [record_activity(organisation=org, activity_type="lot.created", data={"n": i}) for i in range(5)]
    assert Delivery.objects.filter(state=Delivery.State.HELD).count() == 2
    Event.objects.update(created_at=timezone.now() - timedelta(days=31))
    monkeypatch.setattr(retention.time, "sleep", lambda seconds: None)

    assert deliveries_prune(batch_size=2) == {"deliveries": 0, "events": 5, "attempt_hours": 0, "hour_summaries": 0}
    assert set(Event.objects.values_list("id", flat=True)) == {e.id for e in staying}
    assert not Event.objects.filter(id__in=[e.id for e in orphans]).exists()
    assert deliveries_prune(batch_size=2)["events"] == 0  # nothing more to go: the walk ends at once


def test_a_second_prune_while_one_runs_is_refused_and_deletes_nothing_until_the_first_ends(org, caplog):
    """Bad input: a manual `prune_deliveries` and the hourly task started while another run holds the
    pruner's slot (two at once skipped each other's rows and made one VACUUM wait minutes for the other).
    Each is refused saying so and deletes nothing; once the run ends, or its lease runs out because it was
    killed, the next one prunes."""
    import logging

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from delivery import slots
    from delivery.models import SenderSlot

    event = record_activity(organisation=org, activity_type="lot.created", data={})  # no subscriber: no delivery
    Event.objects.filter(id=event.id).update(created_at=timezone.now() - timedelta(days=31))
    running = slots.new_holder()  # another run, in another process, holds the slot
    assert slots.slot_take_only(scope=retention.PRUNE_SCOPE, holder=running,
                                until=timezone.now() + timedelta(seconds=retention.PRUNE_LEASE))

    with pytest.raises(CommandError, match=r"Another prune is running \(its lease ends at .* UTC at the latest\); "
                                           r"nothing was pruned\."):
        call_command("prune_deliveries")
    with caplog.at_level(logging.INFO, logger="delivery.tasks"):
        assert prune_old_deliveries() == {}
    assert "Another prune is running" in caplog.text
    assert Event.objects.filter(id=event.id).exists()  # neither deleted anything
    # The refused runs left the running one's slot as it was.
    assert SenderSlot.objects.get(scope=retention.PRUNE_SCOPE).holder == running

    # The other run was killed: its lease runs out, and the next run prunes (and frees the slot as it ends).
    SenderSlot.objects.filter(scope=retention.PRUNE_SCOPE).update(held_until=timezone.now() - timedelta(seconds=1))
    assert prune_old_deliveries()["events"] == 1
    assert not Event.objects.filter(id=event.id).exists()
    assert slots.slot_held_until(scope=retention.PRUNE_SCOPE) is None
    assert deliveries_prune()["events"] == 0  # and the one after that is not refused


def test_a_prune_frees_its_slot_even_when_it_fails(org, monkeypatch):
    """Bad input: a batch that raises (a database error mid-run). The run fails, and its slot is free at once
    for the next, not held until the lease runs out."""
    from delivery import slots

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(retention, "_delete_in_batches", broken)
    with pytest.raises(RuntimeError, match="went away"):
        deliveries_prune()
    assert slots.slot_held_until(scope=retention.PRUNE_SCOPE) is None
