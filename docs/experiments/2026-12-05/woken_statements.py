"""The statements a worker's woken holder runs per event at a trickle (a measurement, not part of the bench).

PostgreSQL + Redis as the bench sets them up (its own database and queue), the
bench's receiver, one endpoint. A holder runs in a thread of this process, which
listens as a started worker does (wakeups.listening_start); events are recorded
0.1 s apart, so each one wakes the listening holder. Django's
CaptureQueriesContext counts the holder's connection only.

    .venv/bin/python docs/experiments/2026-12-05/woken_statements.py
"""

import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from bench import stack  # noqa: E402
from bench.receiver import FastReceiver  # noqa: E402

EVENTS = 10  # woken ones, after the first (which starts the holder)


def main() -> None:
    workdir = ROOT / "var" / "woken"
    workdir.mkdir(parents=True, exist_ok=True)
    database, queue = "bench_woken", "bench-woken"
    stack.database_create(database)
    try:
        with FastReceiver(workdir) as rx:
            os.environ.update(stack.stack_env(database=database, queue=queue, ca_path=rx.ca_path, extra={}))
            os.environ["DJANGO_SETTINGS_MODULE"] = "webhooks_project.settings"
            import django

            django.setup()
            from django.core.management import call_command
            from django.db import connection
            from django.test.utils import CaptureQueriesContext

            from bench.phases import emit, endpoint_make, organisation_make
            from delivery import wakeups
            from delivery.tasks import send_endpoint

            call_command("migrate", verbosity=0)
            org = organisation_make("woken")
            subscription = endpoint_make(rx, org, "/w", ["lot.created"])
            wakeups.listening_start()
            captured = []

            def holder():
                with CaptureQueriesContext(connection) as queries:
                    send_endpoint(str(subscription.id))
                captured.extend(queries.captured_queries)
                connection.close()

            emit(org, "lot.created")  # the wake row and its message (run here, not by a worker)
            thread = threading.Thread(target=holder)
            thread.start()
            time.sleep(0.5)
            for _ in range(EVENTS):
                emit(org, "lot.created")
                time.sleep(0.1)
            thread.join(30)
            print("total statements", len(captured), "for", EVENTS + 1, "events")
            for query in captured:
                print(query["sql"][:150].replace("\n", " "))
    finally:
        stack.queue_purge(queue)
        stack.database_drop(database)


if __name__ == "__main__":
    main()
