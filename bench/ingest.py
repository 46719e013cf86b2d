"""`python -m bench.ingest [--smoke]`: POST /api/v1/events under gunicorn beside the signal path, in one run.

On the bench's PostgreSQL database and Redis queue (bench.stack), with one webhook per activity type
(so each event writes its delivery too) and no worker (what is measured is the recording):

- signal path: record_activity in CALLERS processes at once (bench.emitters), events/s;
  and one caller's latency per event (p50/p99);
- API, one event per call: CALLERS client processes, each its own keep-alive connection, as fast as
  they are answered, against gunicorn (WEB_WORKERS sync workers, the production server): events/s, p50/p99;
- API at a steady 100 calls/s (one event each) for PACED_SECONDS: p50/p99;
- API, a batch of 100 per call: events/s.

Everything runs on this machine (2 cores shared with the clients): figures compare within the run.
Prints one table; results also go to var/bench/ingest.json.
"""

import argparse
import json
import multiprocessing
import socket
import subprocess
import sys
import time
from pathlib import Path

import certifi

from bench import stack
from bench.arrivals import percentile

ROOT = Path(__file__).resolve().parent.parent
FULL = dict(signal_events=4000, api_events=4000, batch_calls=60, paced_seconds=20, latency_events=500)
SMOKE = dict(signal_events=40, api_events=40, batch_calls=2, paced_seconds=1, latency_events=20)
CALLERS = 4
WEB_WORKERS = 4
PACED_RATE = 100.0
TYPE = "lot.created"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(env: dict) -> tuple:
    """Migrate, create the organisation, a webhook per type and an events key; return (org, key)."""
    import os

    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    from api.services import api_key_create
    from organisations.models import Organisation
    from subscriptions.activity_types import ACTIVITY_TYPES
    from subscriptions.services import subscription_create

    org = Organisation.objects.create(slug="bench-ingest", name="Bench ingest")
    for code in ACTIVITY_TYPES:
        subscription_create(organisation=org, url=f"https://bench.invalid/{code}",
                            activity_types=[code])
    _, key = api_key_create(organisation=org, name="bench", scopes=["events"])
    return org, key


def _post_share(url: str, key: str, count: int, batch: int, start_at: float, out) -> None:
    import requests

    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}"}
    body = ({"events": [{"type": TYPE, "data": {"lot_id": f"LOT-{i}"}} for i in range(batch)]} if batch
            else {"type": TYPE, "data": {"lot_id": "LOT-1"}})
    path = "/api/v1/events/batch" if batch else "/api/v1/events"
    while time.time() < start_at:
        time.sleep(0.001)
    latencies, first = [], time.time()
    for _ in range(count):
        sent = time.perf_counter()
        response = session.post(url + path, json=body, headers=headers, timeout=30)
        latencies.append((time.perf_counter() - sent) * 1000)
        if response.status_code != 201:  # said to the parent at once, not left to its timeout
            out.put((first, time.time(), f"{response.status_code}: {response.text[:300]}"))
            return
    out.put((first, time.time(), latencies))


def _post_parallel(url: str, key: str, *, calls: int, batch: int = 0) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0
    share = -(-calls // CALLERS)
    procs = [ctx.Process(target=_post_share, args=(url, key, min(share, calls - p * share), batch, start_at, out))
             for p in range(CALLERS)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=900) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    refused = [r[2] for r in results if isinstance(r[2], str)]
    if refused:
        raise RuntimeError(f"the API refused a call: {refused[0]}")
    seconds = max(r[1] for r in results) - min(r[0] for r in results)
    latencies = [ms for r in results for ms in r[2]]
    events = calls * (batch or 1)
    return {"events": events, "calls": calls, "seconds": round(seconds, 2), "events_per_s": round(events / seconds, 1),
            "p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1)}


def _paced(url: str, key: str, seconds: float) -> dict:
    """One event per call at PACED_RATE calls/s (open loop: each call starts on its schedule), from threads."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    local = __import__("threading").local()

    def call(at: float) -> float:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        while time.perf_counter() < at:
            time.sleep(0.0005)
        sent = time.perf_counter()
        response = local.session.post(url + "/api/v1/events", json={"type": TYPE, "data": {"lot_id": "LOT-P"}},
                                      headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert response.status_code == 201, response.text
        return (time.perf_counter() - sent) * 1000

    start = time.perf_counter() + 0.5
    schedule = [start + i / PACED_RATE for i in range(int(seconds * PACED_RATE))]
    with ThreadPoolExecutor(max_workers=16) as pool:
        latencies = list(pool.map(call, schedule))
    return {"rate": PACED_RATE, "calls": len(latencies), "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1)}


def _signal_latency(org, count: int) -> dict:
    from bench.phases import emit

    latencies = []
    for _ in range(count):
        sent = time.perf_counter()
        emit(org, TYPE)
        latencies.append((time.perf_counter() - sent) * 1000)
    return {"p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1)}


def _in_process_cost(org, key: str, count: int) -> dict:
    """Return ms per call of POST /api/v1/events through Django's test client (no HTTP) and of record_activity,
    and the statements of one call."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.phases import emit

    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = json.dumps({"type": TYPE, "data": {"lot_id": "LOT-C"}})
    for _ in range(20):
        client.post("/api/v1/events", body, content_type="application/json")
    started = time.perf_counter()
    for _ in range(count):
        assert client.post("/api/v1/events", body, content_type="application/json").status_code == 201
    api_ms = (time.perf_counter() - started) * 1000 / count
    with CaptureQueriesContext(connection) as statements:
        client.post("/api/v1/events", body, content_type="application/json")
    started = time.perf_counter()
    for _ in range(count):
        emit(org, TYPE)
    return {"api_ms": round(api_ms, 2), "record_activity_ms": round((time.perf_counter() - started) * 1000 / count, 2),
            "statements": len(statements.captured_queries)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness only")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    name, queue = "bench_ingest", "bench-ingest"
    stack.database_create(name)
    env = stack.stack_env(database=name, queue=queue, ca_path=Path(certifi.where()),
                          extra={"WEBHOOKS_API_RATE_LIMIT": "1000000", "ALLOWED_HOSTS": "127.0.0.1,testserver"})
    web = None
    try:
        org, key = _setup(env)
        cost = _in_process_cost(org, key, sizes["latency_events"])
        from bench.emitters import emit_parallel

        first, last, ids, _cpu = emit_parallel(env=env, org=org, types=[TYPE], events=sizes["signal_events"],
                                               processes=CALLERS)
        signal = {"events": len(ids), "seconds": round(last - first, 2),
                  "events_per_s": round(len(ids) / (last - first), 1),
                  **_signal_latency(org, sizes["latency_events"])}
        port = _free_port()
        log = open(ROOT / "var" / "bench-ingest-gunicorn.log", "ab")
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "webhooks_project.wsgi", "--bind",
                                f"127.0.0.1:{port}", "--workers", str(WEB_WORKERS)], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        import requests

        for _ in range(200):
            try:
                requests.get(url + "/healthz", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.1)
        _post_parallel(url, key, calls=WEB_WORKERS * 10)  # warm-up: every worker has loaded the app
        one = _post_parallel(url, key, calls=sizes["api_events"])
        paced = _paced(url, key, sizes["paced_seconds"])
        batch = _post_parallel(url, key, calls=sizes["batch_calls"], batch=100)
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=30)
        stack.queue_purge(queue)
        stack.database_drop(name)
    results = {"in_process": cost, "signal": signal, "api_one": one, "api_paced": paced, "api_batch": batch,
               "callers": CALLERS, "web_workers": WEB_WORKERS}
    out = ROOT / "var" / "bench" / ("ingest-smoke.json" if args.smoke else "ingest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    half = one["events_per_s"] / signal["events_per_s"]
    rows = [
        ("in-process cost of one call", f"{cost['api_ms']} ms",
         f"record_activity {cost['record_activity_ms']} ms; {cost['statements']} statements a call"),
        ("signal path (record_activity)", f"{signal['events_per_s']:,} events/s",
         f"one caller p50 {signal['p50_ms']} / p99 {signal['p99_ms']} ms"),
        ("API, one event per call", f"{one['events_per_s']:,} events/s",
         f"p50 {one['p50_ms']} / p99 {one['p99_ms']} ms; {half:.0%} of the signal path's (target >= 50 %)"),
        (f"API at {PACED_RATE:g} calls/s", f"{paced['calls']} calls",
         f"p50 {paced['p50_ms']} / p99 {paced['p99_ms']} ms (target p99 <= 50 ms)"),
        ("API, batch of 100 per call", f"{batch['events_per_s']:,} events/s",
         f"{batch['events_per_s'] / one['events_per_s']:.1f}x one per call (target >= 3x); "
         f"p50 {batch['p50_ms']} / p99 {batch['p99_ms']} ms a call"),
    ]
    print(f"Ingest, {CALLERS} callers, gunicorn with {WEB_WORKERS} workers{' (smoke)' if args.smoke else ''}:")
    for row in rows:
        print(f"  {row[0]:<32} {row[1]:>18}   {row[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
