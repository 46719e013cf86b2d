"""Bytes on disk per delivery and per attempt on PostgreSQL: heap, indexes and TOAST, measured.

    .venv/bin/python -m bench.disk_bytes [--database bench_log] [--attempts 2000]

Reads the log tables of a database bench.log_scale filled (typical rows: an
event of about 150 bytes of JSON, one delivery, one attempt with a short
answer) and divides each table's heap, indexes and TOAST by its rows. Then
adds `attempts` attempts whose receiver answered 64 KB (the default
WEBHOOKS_RESPONSE_BODY_LIMIT), twice: JSON-like text that compresses
(repeated keys and values, as most answers are) and random base64 text that
does not; measures what each added (after a CHECKPOINT, sizes of the files),
and deletes them again. Prints one line per figure and the JSON.
"""

import argparse
import base64
import json
import os
import random
import sys

TABLES = {"delivery": "delivery_delivery", "attempt": "delivery_attempt", "event": "delivery_event",
          "roll-up": "delivery_attempthour"}
BIG = 64 * 1024


def _sizes(cursor, table: str) -> dict:
    cursor.execute(
        "SELECT pg_relation_size(c.oid), pg_indexes_size(c.oid), "
        "coalesce(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0), "
        "(SELECT count(*) FROM " + table + ") FROM pg_class c WHERE c.relname = %s", [table])
    heap, indexes, toast, rows = cursor.fetchone()
    return {"heap": heap, "indexes": indexes, "toast": toast, "rows": rows}


def _json_like(rng: random.Random) -> str:
    parts, size = [], 0
    while size < BIG:
        item = (f'{{"lot_id":"LOT-{rng.randrange(10**6)}","status":"accepted","warehouse":"north",'
                f'"received_at":"2026-12-02T04:{rng.randrange(60):02}:00Z","weight_grams":{rng.randrange(10**5)}}},')
        parts.append(item)
        size += len(item)
    return ('{"items":[' + "".join(parts))[: BIG - 2] + "]}"


def _random_text(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(BIG))[:BIG].decode()


def big_answers(cursor, *, attempts: int, body_of) -> dict:
    """Insert `attempts` attempts with 64 KB bodies (number 2 of existing deliveries); return bytes added per attempt
    (heap, indexes, TOAST); then delete them."""
    rng = random.Random(20)
    before = _sizes(cursor, "delivery_attempt")
    cursor.execute("SELECT delivery_id FROM delivery_attempt WHERE number = 1 ORDER BY id LIMIT %s", [attempts])
    deliveries = [r[0] for r in cursor.fetchall()]
    for delivery_id in deliveries:
        cursor.execute(
            "INSERT INTO delivery_attempt (delivery_id, number, url, started_at, duration_ms, request_headers, "
            "status_code, response_headers, response_body, response_truncated, response_body_escaped, error_kind, "
            "error_message) VALUES (%s, 2, 'https://erp.example.com/hook', now(), 40, '{}'::jsonb, 200, "
            "'{\"content-type\": \"application/json\"}'::jsonb, %s, true, false, '', '')",
            [delivery_id, body_of(rng)])
    cursor.execute("CHECKPOINT")
    after = _sizes(cursor, "delivery_attempt")
    n = len(deliveries)
    added = {k: (after[k] - before[k]) / n for k in ("heap", "indexes", "toast")}
    added["total"] = sum(added.values())
    cursor.execute("DELETE FROM delivery_attempt WHERE number = 2 AND delivery_id = ANY(%s)", [deliveries])
    return {"attempts": n, **added}


def measure(cursor, *, attempts: int) -> dict:
    cursor.execute("CHECKPOINT")
    per_row = {}
    for name, table in TABLES.items():
        s = _sizes(cursor, table)
        rows = max(s["rows"], 1)
        per_row[name] = {"rows": s["rows"], **{k: s[k] / rows for k in ("heap", "indexes", "toast")},
                         "total": (s["heap"] + s["indexes"] + s["toast"]) / rows}
    deliveries = max(per_row["delivery"]["rows"], 1)
    rollup_per_delivery = per_row["roll-up"]["total"] * per_row["roll-up"]["rows"] / deliveries
    typical = per_row["delivery"]["total"] + per_row["attempt"]["total"] + per_row["event"]["total"]
    return {"per_row": per_row, "typical_delivery_with_event_and_attempt": typical + rollup_per_delivery,
            "rollup_per_delivery": rollup_per_delivery,
            "attempt_64kb_json": big_answers(cursor, attempts=attempts, body_of=_json_like),
            "attempt_64kb_random": big_answers(cursor, attempts=attempts, body_of=_random_text)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.disk_bytes", description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="bench_log")
    parser.add_argument("--attempts", type=int, default=2000)
    args = parser.parse_args(argv)
    import psycopg

    from bench import stack

    url = os.environ.get("BENCH_DISK_URL") or stack.database_url(args.database)
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        figures = measure(cursor, attempts=args.attempts)
    for name, row in figures["per_row"].items():
        print(f"  {name:<9} {row['rows']:>12,} rows: {row['heap']:7.1f} B heap + {row['indexes']:7.1f} B indexes "
              f"+ {row['toast']:7.1f} B TOAST = {row['total']:7.1f} B a row")
    print(f"  a typical delivery (its event, one attempt, its share of the roll-up): "
          f"{figures['typical_delivery_with_event_and_attempt']:,.0f} B")
    for key, label in (("attempt_64kb_json", "64 KB JSON-like answer"), ("attempt_64kb_random", "64 KB random")):
        a = figures[key]
        print(f"  an attempt with a {label}: {a['heap']:,.0f} B heap + {a['indexes']:,.0f} B indexes + "
              f"{a['toast']:,.0f} B TOAST = {a['total']:,.0f} B")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
