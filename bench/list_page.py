"""The Webhooks page's server time with 1,000 subscriptions in one organisation, on PostgreSQL.

    .venv/bin/python -m bench.list_page [--subscriptions 1000] [--deliveries 20] [--repeat 20]

Makes its own database (bench.stack, dropped afterwards): one organisation, N
subscriptions (a third paused, three activity types each) and, for each, a few
deliveries over the last day in mixed states, so that every card and table row has
its last delivery and 24 h success rate to compute; one webhook in 25 is broken. Then times, in this process with
Django's test client (the view, its queries and its templates; no network), the median
of `repeat` GETs of: cards page 1, table page 1, a search, sort by last delivery, the
last page. Prints one line per page and the JSON.
"""

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta

from bench import stack

PAGES = {
    "cards, page 1": {},
    "table, page 1": {"view": "table"},
    "table, search 'hook-09'": {"view": "table", "q": "hook-09"},
    "table, paused, sort by last delivery": {"view": "table", "state": "paused", "sort": "last"},
    "table, last page": {"view": "table", "page": "9999"},  # past the end: the last page
    "table, health: failing": {"view": "table", "health": "failing"},
    "table, sort by health, worst first": {"view": "table", "sort": "health"},
}


def load(*, subscriptions: int, deliveries: int):
    """Create the organisation, its admin, and the rows; return the admin user."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from delivery.models import Delivery, Event
    from organisations.models import Membership, Organisation
    from subscriptions.models import SubscribedActivityType, Subscription
    from subscriptions.signing_secrets import encrypt_secret, generate_secret

    org = Organisation.objects.create(slug="list-bench", name="List bench")
    user = get_user_model().objects.create_user(username="list-bench", password="bench-" + "x" * 20)
    Membership.objects.create(user=user, organisation=org, role=Membership.Role.ADMIN)
    secret = encrypt_secret(generate_secret())  # one for all: the page never decrypts it
    now = timezone.now()
    subs = Subscription.objects.bulk_create(
        Subscription(organisation=org, url=f"https://erp-{i:04}.example.com/hook-{i:04}", description=f"Site {i}",
                     secret_encrypted=secret, state="paused" if i % 3 == 0 else "active")
        for i in range(subscriptions)
    )
    SubscribedActivityType.objects.bulk_create(
        SubscribedActivityType(subscription=s, activity_type=code)
        for s in subs for code in ("lot.created", "order.created", "harvest.recorded")
    )
    states = ["succeeded", "succeeded", "succeeded", "failed", "pending"]
    for start in range(0, len(subs), 100):
        events, rows = [], []
        for s in subs[start:start + 100]:
            for j in range(deliveries):
                at = now - timedelta(minutes=(j * 70) % 1440 + 1)
                event = Event(id=uuid.uuid4(), organisation=org, activity_type="lot.created", body="{}",
                              created_at=at)
                events.append(event)
                state = states[j % len(states)]
                rows.append(Delivery(event=event, subscription=s, activity_type="lot.created", state=state,
                                     attempt_count=1, last_status_code=200 if state == "succeeded" else 500,
                                     created_at=at))
        Event.objects.bulk_create(events)
        Delivery.objects.bulk_create(rows)
    # One active webhook in 50 is broken (its breaker open), one in 50 more failing: the default sort's work.
    from delivery.models import EndpointHealth

    EndpointHealth.objects.bulk_create(
        EndpointHealth(subscription=s, url=s.url, consecutive_failures=5 if i % 50 == 1 else 2, failing_since=now,
                       open_until=now + timedelta(minutes=5) if i % 50 == 1 else None,
                       last_error="HTTP 503", last_failed_at=now)
        for i, s in enumerate(subs) if i % 50 in (1, 2))
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return user


def measure(user, *, repeat: int) -> dict:
    """Return {page: median server milliseconds} for PAGES, each checked to answer 200 with rows."""
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(user)
    url = reverse("console:subscription_list")
    figures = {}
    for label, params in PAGES.items():
        def get(params=params, label=label):
            response = client.get(url, params, secure=True, headers={"host": "127.0.0.1"})
            assert response.status_code == 200, (label, response.status_code)
            return response

        get()  # warm
        queries = []

        def count(execute, sql, *args, queries=queries):
            queries.append(sql)
            return execute(sql, *args)

        with connection.execute_wrapper(count):
            get()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            get()
            times.append((time.perf_counter() - t0) * 1000)
        figures[label] = {"median_ms": round(statistics.median(times), 1), "queries": len(queries)}
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.list_page", description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--deliveries", type=int, default=20, help="per subscription, over the last day")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    database = f"bench_list_{os.getpid()}"
    stack.database_create(database)
    try:
        env = stack.stack_env(database=database, queue=f"bench-list-{os.getpid()}", ca_path=stack.ROOT / "none")
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "webhooks_project.settings"
        import django

        django.setup()
        from django.core.management import call_command
        from django.test.utils import override_settings

        call_command("migrate", verbosity=0)
        t0 = time.monotonic()
        user = load(subscriptions=args.subscriptions, deliveries=args.deliveries)
        loaded = time.monotonic() - t0
        # Production serves a collectstatic manifest; the bench has none, so plain static names.
        with override_settings(STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }):
            figures = measure(user, repeat=args.repeat)
        from django.db import connections

        connections.close_all()
    finally:
        stack.database_drop(database)
    print(f"{args.subscriptions:,} subscriptions, {args.subscriptions * args.deliveries:,} deliveries "
          f"(loaded in {loaded:.1f} s); median of {args.repeat} GETs, server time:")
    for label, figure in figures.items():
        print(f"  {label:<40} {figure['median_ms']:7.1f} ms  ({figure['queries']} queries)")
    print(json.dumps({"subscriptions": args.subscriptions, "deliveries": args.subscriptions * args.deliveries,
                      "pages": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
