"""Queries compiled once by the ORM and run again with new values (delivery.compiled), on each store.

What must hold on SQLite and PostgreSQL alike: values are bound as the ORM
binds them (UUIDs, aware datetimes, JSON, NULLs) and rows come back as the ORM
returns them; each shape (an IN list's length, a LIMIT) gets its own SQL; an
INSERT ... RETURNING with ignored conflicts returns only the rows it wrote; and
every compiled statement of the sender runs on this store.
"""

import importlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, models, transaction
from django.utils import timezone

from conftest import make_subscription
from delivery.compiled import Compiled, Insert, NewUUID, Param, any_equal, params
from delivery.models import Delivery, EndpointHealth, EndpointWake
from delivery.tasks import send_endpoint
from subscriptions.activity import record_activity
from subscriptions.models import Subscription
from subscriptions.services import subscription_pause, subscription_resume

pytestmark = pytest.mark.django_db(transaction=True)

_TIME = models.DateTimeField()


def test_a_select_binds_and_converts_values_as_the_orm_does(org):
    subscription, _ = make_subscription(org, url="https://one.example.com/in")
    Subscription.objects.filter(id=subscription.id).update(
        custom_headers=[{"name": "X-Tenant", "value": "42", "secret": False}],
        previous_secret_until=datetime(2031, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    query = Compiled(lambda: Subscription.objects.filter(
        id=Param("id", Subscription._meta.pk), created_at__lte=Param("now", _TIME)).values_list(
        "id", "organisation_id", "previous_secret_until", "custom_headers", "deleted_at"))

    (row,) = query.run(id=subscription.id, now=timezone.now())

    assert row == (subscription.id, org.id, datetime(2031, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
                   [{"name": "X-Tenant", "value": "42", "secret": False}], None)
    assert isinstance(row[0], uuid.UUID) and row[2].tzinfo is not None  # not SQLite's text
    assert query.run(id=uuid.uuid4(), now=timezone.now()) == []  # bad input: an id that does not exist


def test_each_shape_gets_its_own_sql_and_the_orm_compiles_it_once(org, monkeypatch):
    subscriptions = [make_subscription(org, url=f"https://h{i}.example.com/in")[0] for i in range(3)]
    built = []

    def build(n):
        built.append(n)
        return Subscription.objects.filter(id__in=params("ids", Subscription._meta.pk, n)).order_by("url") \
            .values_list("url")

    query = Compiled(build)
    for _ in range(3):
        assert query.run((2,), ids=[s.id for s in subscriptions[:2]]) == [("https://h0.example.com/in",),
                                                                            ("https://h1.example.com/in",)]
        assert len(query.run((3,), ids=[s.id for s in subscriptions])) == 3

    assert built == [2, 3]  # once per shape, however many runs


def test_an_update_binds_nulls_and_datetimes_and_returns_how_many_rows_changed(org):
    subscription, _ = make_subscription(org)
    (event,) = [record_activity(organisation=org, activity_type="lot.created", data={})]
    delivery = Delivery.objects.get(event=event)
    until = timezone.now() + timedelta(seconds=30)
    lease = Compiled(lambda n: (Delivery.objects.filter(id__in=params("ids", Delivery._meta.pk, n)),
                                {"locked_until": Param("until", _TIME)}), update=True)
    give_back = Compiled(lambda: (Delivery.objects.filter(id=Param("id", Delivery._meta.pk)),
                                  {"locked_until": None}), update=True)

    assert lease.run((1,), ids=[delivery.id], until=until) == 1
    delivery.refresh_from_db()
    assert delivery.locked_until == until
    assert give_back.run(id=delivery.id) == 1
    assert give_back.run(id=uuid.uuid4()) == 0  # bad input: nothing to change
    delivery.refresh_from_db()
    assert delivery.locked_until is None


def test_an_insert_ignoring_conflicts_returns_only_the_rows_it_wrote_and_a_delete_counts(org):
    first, _ = make_subscription(org, url="https://first.example.com/in")
    second, _ = make_subscription(org, url="https://second.example.com/in")
    EndpointWake.objects.create(subscription=first, since=timezone.now())  # bad input: a row is already there
    insert = Compiled(lambda n: Insert(
        EndpointWake, ["subscription", "since", "waiting"],
        [EndpointWake(subscription_id=Param("ids", EndpointWake._meta.pk, i), since=Param("now", _TIME),
                      waiting=False) for i in range(n)],
        ignore_conflicts=True, returning=("subscription",)))
    delete = Compiled(lambda: EndpointWake.objects.filter(any_equal("subscription_id", "ids", EndpointWake._meta.pk,
                                                                    2)), delete=True)

    assert insert.run((2,), ids=[first.id, second.id], now=timezone.now()) == [(second.id,)]
    assert EndpointWake.objects.count() == 2
    assert delete.run(ids=[first.id, second.id]) == 2
    assert EndpointWake.objects.count() == 0


def test_an_insert_that_clears_a_mark_returns_the_rows_it_wrote_and_those_it_cleared_and_leaves_the_rest(org):
    listening, _ = make_subscription(org, url="https://listening.example.com/in")
    idle, _ = make_subscription(org, url="https://idle.example.com/in")
    new, _ = make_subscription(org, url="https://new.example.com/in")
    earlier = timezone.now() - timedelta(seconds=5)
    # Bad input for a plain insert: two rows are already there, one marked, one not.
    EndpointWake.objects.create(subscription=listening, since=earlier, listening=True)
    EndpointWake.objects.create(subscription=idle, since=earlier, waiting=True)
    insert = Compiled(lambda n: Insert(
        EndpointWake, ["subscription", "since", "waiting", "listening"],
        [EndpointWake(subscription_id=Param("ids", EndpointWake._meta.pk, i), since=Param("now", _TIME),
                      waiting=False, listening=False) for i in range(n)],
        conflict=("subscription",), clear="listening", returning=("subscription", "since")))
    now = timezone.now()

    rows = insert.run((3,), ids=[listening.id, idle.id, new.id], now=now)

    assert sorted(rows, key=lambda row: row[1]) == [(listening.id, earlier), (new.id, now)]
    rows_now = {w.subscription_id: (w.since, w.waiting, w.listening) for w in EndpointWake.objects.all()}
    assert rows_now == {listening.id: (earlier, False, False), idle.id: (earlier, True, False),
                        new.id: (now, False, False)}
    assert insert.run((1,), ids=[listening.id], now=timezone.now()) == []  # the mark is taken once


def test_an_upsert_adds_its_counts_to_the_row_it_meets_and_makes_the_others(org):
    from delivery.attempt_hours import attempt_hours_add
    from delivery.models import AttemptHour

    subscription, _ = make_subscription(org)
    nine = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    attempt_hours_add([(subscription.id, nine + timedelta(minutes=5), 12, 200),
                       (subscription.id, nine + timedelta(minutes=50), 12, None)])
    # One row met (9:00, 12 ms: a 503 and a 204 added), one made (10:00), in one statement.
    attempt_hours_add([(subscription.id, nine + timedelta(minutes=59, seconds=59), 12, 503),
                       (subscription.id, nine + timedelta(minutes=1), 12, 204),
                       (str(subscription.id), nine + timedelta(hours=1), 12, 200)])
    rows = AttemptHour.objects.order_by("hour").values_list("hour", "duration_ms", "succeeded", "http_failed",
                                                            "no_answer")
    assert list(rows) == [(nine, 12, 2, 1, 1), (nine + timedelta(hours=1), 12, 1, 0, 0)]


def test_new_uuid_makes_a_distinct_version_4_uuid_per_row(org):
    for i in range(5):
        make_subscription(org, url=f"https://u{i}.example.com/in")
    query = Compiled(lambda: Subscription.objects.annotate(u=NewUUID()).values_list("u"))

    made = [row[0] for row in query.run()]

    assert len(made) == 5 and len(set(made)) == 5
    assert all(isinstance(u, uuid.UUID) and u.version == 4 and u.variant == uuid.RFC_4122 for u in made)


def test_select_for_update_is_compiled_inside_the_transaction_that_runs_it(org):
    subscription, _ = make_subscription(org)
    query = Compiled(lambda: Subscription.objects.filter(id=Param("id", Subscription._meta.pk))
                     .select_for_update(skip_locked=True).values_list("id"))
    with transaction.atomic():
        assert query.run(id=subscription.id) == [(subscription.id,)]
    sql = next(iter(query._plans.values())).sql
    assert ("FOR UPDATE SKIP LOCKED" in sql) == (connection.vendor == "postgresql")


def test_every_compiled_statement_of_the_sender_runs_on_this_store(org, receiver, monkeypatch):
    """A small life of an endpoint (events, a burst, a failure, pause and resume) runs each statement once at least."""
    monkeypatch.setattr("delivery.wakeups._publish", lambda subscription_id, helper=False: True)
    modules = [importlib.import_module(f"delivery.{name}") for name in
               ("states", "slots", "wakeups", "snapshots", "outbox", "attempt_hours")]
    statements = {f"{m.__name__}.{name}": value for m in modules for name, value in vars(m).items()
                  if isinstance(value, Compiled)}
    statements.update({f"delivery.states._CREATE[{k}]": v for k, v in importlib.import_module(
        "delivery.states")._CREATE.items()})
    for statement in statements.values():
        statement._plans.clear()

    from delivery import health, slots, states, wakeups
    from subscriptions.services import subscription_send_test

    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.script.extend([200, 503])
    for i in range(3):
        record_activity(organisation=org, activity_type="lot.created", data={"n": i})
    subscription_send_test(subscription=subscription, activity_type="lot.created")
    send_endpoint(str(subscription.id))  # claims, sends, records a success and a failure, gives back, looks again
    slots.slots_take(endpoint=(slots.endpoint_scope(subscription.id), 4),
                     organisation=(slots.organisation_scope(org.id), 6), holder="h",
                     until=timezone.now() + timedelta(seconds=30))
    slots.slots_renew(holder="h", until=timezone.now() + timedelta(seconds=60))
    slots.slots_release(holder="h")
    states.deliveries_extend(ids=[Delivery.objects.first().id], until=timezone.now())
    wakeups.endpoint_wait_for_slot(subscription.id)
    wakeups.endpoint_keep_awake(subscription.id)
    wakeups.endpoint_wait_for_slot(subscription.id)
    wakeups.endpoints_wake_waiting(organisation_id=org.id)
    wakeups.endpoints_sweep()  # the sweeper: stale rows, then endpoints with due work and no row
    monkeypatch.setattr(wakeups, "_wait", lambda subscription_id: False)
    wakeups.listening_start()  # a worker's holder marks its row listening
    try:
        assert wakeups.endpoint_listen(subscription.id) is wakeups.Listened.QUIET
    finally:
        wakeups.listening_stop()
    record_activity(organisation=org, activity_type="lot.created", data={"n": 3})  # finds it listening
    assert states.has_sendable(subscription_id=subscription.id, tests_only=True) is False
    subscription_pause(subscription=subscription)
    subscription_resume(subscription=subscription)
    EndpointHealth.objects.filter(subscription=subscription).update(open_until=timezone.now())
    assert health.gate(EndpointHealth.objects.get(subscription=subscription), timezone.now()) is health.Gate.PROBE
    send_endpoint(str(subscription.id))  # the probe: the delivery snapshot before each request of a batch

    not_run = sorted(name for name, statement in statements.items() if not statement._plans)
    assert not_run == [], f"compiled statements never run on {connection.vendor}: {not_run}"
