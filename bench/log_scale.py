"""Scale of the log: page server time with a million deliveries in PostgreSQL.

Rows are generated inside PostgreSQL (INSERT ... SELECT over generate_series),
one event, one delivery and one attempt each, all for one subscription (the
worst case for its log). Columns the bench does not name get their model
default, so fields added later do not break the load.
"""

import hashlib
import statistics
import time
import uuid
from datetime import UTC, timedelta

from django.db import connection
from django.db.models import NOT_PROVIDED
from django.test import Client, override_settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from delivery import selectors
from delivery.models import Attempt, Delivery, Event

CHUNK = 200_000
BODY = '{"id":"evt_x","type":"lot.created","timestamp":"2026-01-01T00:00:00.000Z","organisation":"bench",' \
       '"data":{"lot_id":"LOT-1","weight_grams":5000.0}}'


def _insert_select(model, given: dict, source: str, source_params: list) -> None:
    """INSERT INTO model's table SELECT the given expressions over source; other columns get defaults.

    given maps a column to an SQL expression, or to (expression, [params]).
    """
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
    sql = f'INSERT INTO "{model._meta.db_table}" ({", ".join(columns)}) SELECT {", ".join(values)} {source}'
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *source_params])


def _load(subscription, *, rows: int) -> None:
    org_id, sub_id, url = subscription.organisation_id, subscription.id, subscription.url
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        series = "FROM generate_series(%s, %s) AS g"
        bounds = [start + 1, start + n]
        # Ids derived from the row number, so the three tables join without RETURNING.
        ev_id = "md5('e' || g)::uuid"
        created = "(now() - g * interval '1 second')"
        _insert_select(Event, {
            "id": ev_id, "organisation_id": ("%s", [org_id]), "activity_type": "'lot.created'",
            "body": ("%s", [BODY]), "is_test": "false", "idempotency_key": "NULL", "created_at": created,
        }, series, bounds)
        _insert_select(Delivery, {
            "id": "md5('d' || g)::uuid", "event_id": ev_id, "subscription_id": ("%s", [sub_id]),
            "activity_type": "'lot.created'", "state": "'succeeded'", "attempt_count": "1",
            "last_status_code": "200", "created_at": created, "completed_at": created,
            "next_attempt_at": "NULL", "locked_until": "NULL",
        }, series, bounds)
        _insert_select(Attempt, {
            "delivery_id": "md5('d' || g)::uuid", "number": "1", "url": ("%s", [url]), "started_at": created,
            "duration_ms": "12", "request_headers": "'{}'::jsonb", "status_code": "200",
            "response_headers": "'{}'::jsonb", "response_body": "'{\"ok\":true}'", "response_body_escaped": "false",
        }, series, bounds)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def log_scale(subscription, user, *, rows: int, repeat: int = 10) -> dict:
    """Load `rows` deliveries, then time the selector and the pages (median of `repeat`), pages 1 and 100."""
    t0 = time.monotonic()
    _load(subscription, rows=rows)
    loaded_s = time.monotonic() - t0
    cursors = [None]
    for _ in range(99):
        page = selectors.delivery_log(subscription=subscription, cursor=cursors[-1])
        cursors.append(page.older_cursor)
    figures = {"rows": rows, "load_seconds": loaded_s}
    for label, cursor in (("page1", cursors[0]), ("page100", cursors[99])):
        figures[f"selector_{label}_ms"] = _median_ms(
            lambda c=cursor: selectors.delivery_log(subscription=subscription, cursor=c), repeat)
    # Production serves a collectstatic manifest; the bench has none, so plain static names.
    with override_settings(STORAGES={
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }):
        return _views(subscription, user, cursors, figures, repeat)


def _views(subscription, user, cursors, figures, repeat) -> dict:
    client = Client()
    client.force_login(user)
    try:
        detail = reverse("console:subscription_detail", kwargs={"subscription_id": subscription.id})
        log = reverse("console:subscription_log", kwargs={"subscription_id": subscription.id})
    except NoReverseMatch:
        return figures
    for label, url, cursor in (("detail", detail, None), ("page1", log, None), ("page100", log, cursors[99])):
        data = {"before": cursor} if cursor else {}

        def get(url=url, data=data):
            response = client.get(url, data, secure=True, headers={"host": "127.0.0.1"})
            assert response.status_code == 200, (url, response.status_code)

        figures[f"view_{label}_ms"] = _median_ms(get, repeat)
    return _searches(client, subscription, figures, repeat)


def _searches(client, subscription, figures, repeat) -> dict:
    """Time the log's searches (the log fragment's view) at depth: a whole event id, a date range, combined filters."""
    rows = figures["rows"]
    try:
        log = reverse("console:subscription_log", kwargs={"subscription_id": subscription.id})
        bulk = reverse("console:deliveries_bulk_redeliver", kwargs={"subscription_id": subscription.id})
    except NoReverseMatch:
        return figures
    # Row g was created g seconds before the load and its event id is md5('e' || g) (see _load).
    deep = int(rows * 0.9)
    event_id = uuid.UUID(hashlib.md5(f"e{deep}".encode()).hexdigest())
    middle = timezone.now().astimezone(UTC) - timedelta(seconds=rows // 2)
    window = {"since": f"{middle - timedelta(hours=1):%Y-%m-%dT%H:%M}", "until": f"{middle:%Y-%m-%dT%H:%M}"}
    searches = (
        ("search_event", log, {"q": f"evt_{event_id.hex}"}, 1),
        ("search_range", log, window, 50),
        ("search_range_state_type", log, {**window, "state": "succeeded", "type": "lot.created"}, 50),
        ("search_state_none_match", log, {"state": "failed"}, 0),  # the worst case: no row has it
        ("bulk_confirm_range", bulk, window, None),
    )
    for label, url, data, expected_rows in searches:
        def get(url=url, data=data, expected_rows=expected_rows):
            response = client.get(url, data, secure=True, headers={"host": "127.0.0.1"})
            assert response.status_code == 200, (url, data, response.status_code)
            if expected_rows is not None:
                found = response.content.count(b'class="log__event"')
                assert found == min(expected_rows, rows), (data, found)

        figures[f"view_{label}_ms"] = _median_ms(get, repeat)
    return figures
