"""Scale of the log: every console page's server time with millions of deliveries in PostgreSQL.

    .venv/bin/python -m bench.log_scale [--rows 10000000] [--database bench_log] [--repeat 10] [--fresh]

Rows are generated inside PostgreSQL (INSERT ... SELECT over generate_series,
a million rows a statement, never the ORM one by one): one event, one delivery
and one attempt each, all for one subscription (the worst case for its log),
one a second back from the load, a twentieth failed, a seventh of type
order.created, durations spread over 300 values; the charts' hourly roll-up
is counted from the same series. Columns the bench does not name get their
model default, so fields added later do not break the load. The pages are
then timed through Django's test client (the view, its queries and its
templates; no network), median of `repeat` GETs each, each checked to answer
200 with the rows it should.

Standalone (`python -m bench.log_scale`), the database is kept between runs
(`bench_log` unless told, or `--sqlite PATH`: the same rows in SQLite, by a
recursive series): a second run with the same --rows only measures.
`bench.run`'s `log` phase loads into its own run's database.
"""

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, timedelta

CHUNK = 1_000_000
BODY = '{"id":"evt_x","type":"lot.created","timestamp":"2026-01-01T00:00:00.000Z","organisation":"bench",' \
       '"data":{"lot_id":"LOT-1","weight_grams":5000.0}}'
TYPES = ["lot.created", "order.created"]
FAILED_EVERY = 20  # row g failed when g % 20 == 0
ORDER_EVERY = 7  # row g is order.created when g % 7 == 0
NO_ROW_STATE = "cancelled"  # no generated row has it


def event_id(g: int) -> uuid.UUID:
    """The id of generated row g's event (the SQL below makes the same)."""
    return uuid.UUID("e" + format(g, "x").rjust(31, "0"))


def delivery_id(g: int) -> uuid.UUID:
    """The id of generated row g's delivery (the SQL below makes the same)."""
    return uuid.UUID("d" + format(g, "x").rjust(31, "0"))


def _insert_select(model, given: dict, source: tuple[str, list], with_sql: str = "", upsert: str = "") -> None:
    """INSERT INTO model's table SELECT the given expressions over source (SQL, [params]); other columns get
    defaults. given maps a column to an SQL expression, or to (expression, [params]); `with_sql` (a WITH
    clause taking source's params) comes first; `upsert` (an ON CONFLICT clause, {table} for the table) last.
    """
    from django.db import connection
    from django.db.models import NOT_PROVIDED

    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        expr = given.get(field.column)
        if expr is None and field.primary_key and field.get_default() is None:
            continue  # an identity column: PostgreSQL numbers the rows
        columns.append(f'"{field.column}"')
        if expr is None:
            default = field.get_default() if field.default is not NOT_PROVIDED or field.null else ""
            expr = ("%s", [field.get_db_prep_save(default, connection)])
        if isinstance(expr, str):
            expr = (expr, [])
        values.append(expr[0])
        params.extend(expr[1])
    table = f'"{model._meta.db_table}"'
    sql = f'{with_sql}INSERT INTO {table} ({", ".join(columns)}) SELECT {", ".join(values)} {source[0]}'
    if upsert:
        sql += " " + upsert.format(table=table)
    if with_sql:  # the series' bounds go first, with the WITH clause
        params = [*source[1], *params]
    else:
        params = [*params, *source[1]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _sql(vendor: str, first: int, spacing: float = 1.0) -> dict:
    """The generator's expressions of row g, created (g - first + 1) x `spacing` seconds before the load's base, on
    this store ("%%" is one "%" once parameters are bound)."""
    if vendor == "postgresql":
        created = f"(%s::timestamptz - (g - {first - 1}) * interval '{spacing:.6f} seconds')"
        return {"created": created, "hour": f"date_trunc('hour', {created}, 'UTC')",
                "event_id": "('e' || lpad(to_hex(g), 31, '0'))::uuid",
                "delivery_id": "('d' || lpad(to_hex(g), 31, '0'))::uuid", "json": "'{}'::jsonb", "false": "false",
                "series": "FROM generate_series(%s, %s) AS g", "with": ""}
    # SQLite: datetimes as Django stores them (UTC text), UUIDs as 32 hex digits, a recursive series.
    shift = f"'-' || ((g - {first - 1}) * {spacing:.6f}) || ' seconds'"
    return {"created": f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', %s, {shift})",
            "hour": f"strftime('%%Y-%%m-%%d %%H:00:00', %s, {shift})",
            "event_id": "printf('e%%031x', g)", "delivery_id": "printf('d%%031x', g)", "json": "'{}'", "false": "0",
            "series": "FROM s",
            "with": "WITH RECURSIVE s(g) AS (SELECT %s UNION ALL SELECT g + 1 FROM s WHERE g < %s) "}


def load_rows(subscription, *, rows: int, base, first: int = 1, spacing: float = 1.0, analyze: bool = True) -> None:
    """Generate `rows` deliveries of the subscription, rows g = first, first + 1, ..., row g created
    (g - first + 1) x `spacing` seconds before `base` (PostgreSQL: generate_series; SQLite: a recursive
    series); then ANALYZE unless told not to (a caller loading in parts analyzes after the last)."""
    from django.db import connection

    from delivery.models import Attempt, AttemptHour, Delivery, Event

    # Ids as the store keeps them (SQLite: UUIDs as 32 hex digits).
    org_id = Event._meta.get_field("organisation").get_db_prep_save(subscription.organisation_id, connection)
    sub_id = Delivery._meta.get_field("subscription").get_db_prep_save(subscription.id, connection)
    url = subscription.url
    x = _sql(connection.vendor, first, spacing)
    at = base if connection.vendor == "postgresql" else base.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    created = (x["created"], [at])
    failed = f"(g %% {FAILED_EVERY} = 0)"
    kind = f"(CASE WHEN g %% {ORDER_EVERY} = 0 THEN 'order.created' ELSE 'lot.created' END)"
    duration = "(5 + (g %% 1000) * 7919 %% 300)"  # 300 values, within a 4-byte integer
    status = f"(CASE WHEN {failed} THEN 500 ELSE 200 END)"
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        bounds = [first + start, first + start + n - 1]
        source = (x["series"], bounds)
        _insert_select(Event, {
            "id": x["event_id"], "organisation_id": ("%s", [org_id]), "activity_type": kind,
            "body": ("%s", [BODY]), "is_test": x["false"], "idempotency_key": "NULL", "created_at": created,
        }, source, x["with"])
        _insert_select(Delivery, {
            "id": x["delivery_id"], "event_id": x["event_id"], "subscription_id": ("%s", [sub_id]),
            "activity_type": kind,
            "state": f"(CASE WHEN {failed} THEN 'failed' ELSE 'succeeded' END)", "attempt_count": "1",
            "last_status_code": status, "last_error": f"(CASE WHEN {failed} THEN 'HTTP 500' ELSE '' END)",
            "created_at": created, "completed_at": created, "next_attempt_at": "NULL", "locked_until": "NULL",
        }, source, x["with"])
        _insert_select(Attempt, {
            "delivery_id": x["delivery_id"], "number": "1", "url": ("%s", [url]), "started_at": created,
            "duration_ms": duration, "request_headers": x["json"], "status_code": status,
            "response_headers": x["json"], "response_body": "'{\"ok\":true}'",
            "response_body_escaped": x["false"],
        }, source, x["with"])
        # The charts' roll-up of the same attempts, as the sender's upserts would have left it.
        _insert_select(AttemptHour, {
            "subscription_id": ("%s", [sub_id]), "hour": (x["hour"], [at]), "duration_ms": duration,
            "succeeded": f"sum(CASE WHEN {failed} THEN 0 ELSE 1 END)",
            "http_failed": f"sum(CASE WHEN {failed} THEN 1 ELSE 0 END)", "no_answer": "0",
        }, (x["series"] + " WHERE true GROUP BY 2, 3", bounds), x["with"],
            upsert="ON CONFLICT (subscription_id, hour, duration_ms) DO UPDATE SET "
                   "succeeded = {table}.succeeded + EXCLUDED.succeeded, "
                   "http_failed = {table}.http_failed + EXCLUDED.http_failed")
        print(f"  loaded {start + n:,} of {rows:,}", flush=True)
    if analyze:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def log_scale(subscription, user, *, rows: int, repeat: int = 10, load: bool = True) -> dict:
    """Load `rows` deliveries (unless already loaded: load=False), then time the selector and every page."""
    from django.test import override_settings

    from delivery.models import Delivery

    t0 = time.monotonic()
    if load:
        from django.utils import timezone

        load_rows(subscription, rows=rows, base=timezone.now().replace(microsecond=0))
    loaded_s = time.monotonic() - t0
    # The closed hours' summaries, as the periodic task (delivery.tasks.summarise_closed_hours) keeps them:
    # the pages read them, and the roll-up of the open hours only.
    from delivery.charts import closed_hours_summarise

    t1 = time.monotonic()
    summarised = closed_hours_summarise()
    print(f"  closed hours summed up: {summarised:,} in {time.monotonic() - t1:.1f} s", flush=True)
    newest = Delivery.objects.filter(subscription=subscription).order_by("-created_at").first()
    base = newest.created_at + timedelta(seconds=1)  # row g was created g seconds before it
    figures = {"rows": rows, "load_seconds": loaded_s}
    # Production serves a collectstatic manifest; the bench has none, so plain static names.
    with override_settings(STORAGES={
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }):
        return _views(subscription, user, figures, repeat, base)


def _views(subscription, user, figures, repeat, base) -> dict:
    from django.test import Client
    from django.urls import reverse

    from delivery import selectors

    cursors = [None]
    for _ in range(99):
        cursors.append(selectors.delivery_log(subscription=subscription, cursor=cursors[-1]).older_cursor)
    for label, cursor in (("page1", cursors[0]), ("page100", cursors[99])):
        figures[f"selector_{label}_ms"] = _median_ms(
            lambda c=cursor: selectors.delivery_log(subscription=subscription, cursor=c), repeat)
    client = Client()
    client.force_login(user)
    detail = reverse("console:subscription_detail", kwargs={"subscription_id": subscription.id})
    log = reverse("console:subscription_log", kwargs={"subscription_id": subscription.id})
    bulk = reverse("console:deliveries_bulk_redeliver", kwargs={"subscription_id": subscription.id})
    rows = figures["rows"]
    deep = int(rows * 0.9)
    middle = base.astimezone(UTC) - timedelta(seconds=rows // 2)
    window = {"since": f"{middle - timedelta(hours=1):%Y-%m-%dT%H:%M}", "until": f"{middle:%Y-%m-%dT%H:%M}"}
    full = min(50, rows)
    pages = (  # (label, url, query, least rows shown (None: not a log page), most rows shown)
        ("detail", detail, {}, full, 50),  # the subscription page: 24 h charts, card, log page 1
        ("detail_7d", detail, {"range": "7d"}, full, 50),
        ("page1", log, {}, full, 50),
        ("page100", log, {"before": cursors[99]} if cursors[99] else {}, 0, 50),
        ("search_event", log, {"q": f"evt_{event_id(deep).hex}"}, 1 if deep else 0, 1),
        ("search_range", log, window, min(50, rows // 2), 50),
        ("search_state", log, {"state": "failed"}, min(1, rows // FAILED_EVERY), 50),
        ("search_type", log, {"type": "order.created"}, min(1, rows // ORDER_EVERY), 50),
        ("search_range_state_type", log, {**window, "state": "failed", "type": "order.created"}, 0, 50),
        ("search_state_none_match", log, {"state": NO_ROW_STATE}, 0, 0),
        ("bulk_confirm_range", bulk, window, None, None),
        ("bulk_confirm_all", bulk, {}, None, None),
        ("bulk_confirm_state", bulk, {"state": "failed"}, None, None),
    )
    for label, url, data, least, most in pages:
        def get(url=url, data=data, least=least, most=most):
            response = client.get(url, data, secure=True, headers={"host": "127.0.0.1"})
            assert response.status_code == 200, (url, data, response.status_code)
            if least is not None:
                found = response.content.count(b'class="log__event"')
                assert least <= found <= most, (data, found)

        figures[f"view_{label}_ms"] = _median_ms(get, repeat)
        print(f"  {label:<28} {figures[f'view_{label}_ms']:7.1f} ms", flush=True)
    return _list_page(client, user, figures, repeat)


def _list_page(client, user, figures, repeat) -> dict:
    """The Webhooks list of an organisation with 1,000 subscriptions (bench.list_page's rows, made once)."""
    from django.urls import reverse

    from bench import list_page
    from organisations.models import Organisation

    subscriptions = 1000 if figures["rows"] >= 100_000 else 20
    if not Organisation.objects.filter(slug="list-bench").exists():
        list_user = list_page.load(subscriptions=subscriptions, deliveries=20)
    else:
        from django.contrib.auth import get_user_model

        list_user = get_user_model().objects.get(username="list-bench")
    client.force_login(list_user)
    url = reverse("console:subscription_list")
    for label, params in (("list_cards", {}), ("list_table", {"view": "table"})):
        def get(params=params):
            response = client.get(url, params, secure=True, headers={"host": "127.0.0.1"})
            assert response.status_code == 200, (params, response.status_code)

        figures[f"view_{label}_ms"] = _median_ms(get, repeat)
        print(f"  {label:<28} {figures[f'view_{label}_ms']:7.1f} ms", flush=True)
    figures["list_subscriptions"] = subscriptions
    client.force_login(user)
    return figures


def _database(name: str, fresh: bool) -> None:
    import psycopg

    from bench import stack

    with psycopg.connect(stack.PG_ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    if fresh or not exists:
        stack.database_create(name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.log_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--database", default="bench_log", help="kept between runs (PostgreSQL)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--fresh", action="store_true", help="drop and reload the database")
    parser.add_argument("--sqlite", metavar="PATH", help="a SQLite file instead of PostgreSQL (kept too)")
    args = parser.parse_args(argv)
    import os
    from pathlib import Path

    from bench import stack

    env = stack.stack_env(database=args.database, queue="bench-log-scale", ca_path=stack.ROOT / "none")
    if args.sqlite:
        path = Path(args.sqlite).resolve()
        if args.fresh:
            path.unlink(missing_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{path}"
    else:
        _database(args.database, args.fresh)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "webhooks_project.settings"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from delivery.models import Delivery
    from organisations.models import Membership, Organisation
    from subscriptions.services import subscription_create

    call_command("migrate", verbosity=0)
    org = Organisation.objects.filter(slug="log-scale").first()
    if org is None:
        org = Organisation.objects.create(slug="log-scale", name="Log scale")
        user = get_user_model().objects.create_user(username="log-scale", password="bench-" + "x" * 20)
        Membership.objects.create(user=user, organisation=org, role=Membership.Role.ADMIN)
        subscription_create(organisation=org, url="https://127.0.0.1:9/log", activity_types=TYPES)
    user = get_user_model().objects.get(username="log-scale")
    subscription = org.subscriptions.get()
    have = Delivery.objects.filter(subscription=subscription).count()
    if have not in (0, args.rows):
        raise SystemExit(f"{args.database} holds {have:,} deliveries, not {args.rows:,}: run with --fresh")
    where = args.sqlite or args.database
    print(f"{args.rows:,} deliveries in {where}" + (" (loading)" if not have else " (kept)"), flush=True)
    figures = log_scale(subscription, user, rows=args.rows, repeat=args.repeat, load=not have)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
