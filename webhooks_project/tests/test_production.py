"""The production command line of docs/OPERATIONS.md, started as written: gunicorn, a worker and beat.

On TEST_STORES=services (CI) they run against PostgreSQL and Redis, as in production;
on TEST_STORES=embedded against the run's SQLite file and filesystem broker.
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from conftest import ROOT, database_url, make_subscription, wait_until
from delivery.models import Delivery
from subscriptions.activity import record_activity

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MARKER = "<!-- production-commands:"
SCHEDULE = "/var/lib/webhooks/celerybeat-schedule"
TOKEN = "production-test-metrics-token"
PROXY = {"X-Forwarded-Proto": "https"}  # what the TLS-terminating proxy in front of gunicorn adds


def production_commands() -> list[list[str]]:
    """Return the command lines of the fenced block after the marker in docs/OPERATIONS.md."""
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    block = re.search(re.escape(MARKER) + r".*?\n```sh\n(.*?)\n```", text, re.S)
    assert block, "docs/OPERATIONS.md has no production-commands block"
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_run_here(argv: list[str], *, port: int, schedule: str) -> list[str]:
    """Return argv with this virtualenv's interpreter, a free local port and a temporary schedule file."""
    program, *args = argv
    args = [f"127.0.0.1:{port}" if a == "0.0.0.0:8000" else schedule if a == SCHEDULE else a for a in args]
    return [sys.executable, *([] if program == "python" else ["-m", program]), *args]


@pytest.fixture
def production(tmp_path, receiver):
    """Run the documented commands; yield the web server's base URL. Stop everything afterwards."""
    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url(),
        "STATIC_ROOT": str(tmp_path / "static"),
        "REQUESTS_CA_BUNDLE": str(receiver.ca_path),
        "METRICS_TOKEN": TOKEN,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("TEST_DATABASE_NAME", None)
    commands = [_as_run_here(argv, port=port, schedule=str(tmp_path / "beat-schedule"))
                for argv in production_commands()]
    servers = []
    for argv in commands:
        if argv[1] == "manage.py":  # migrate and collectstatic: run to the end
            subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
        else:
            log = open(tmp_path / f"{len(servers)}.log", "wb")
            servers.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True))
    assert [argv[2] for argv in commands if argv[1] == "-m"] == ["gunicorn", "celery", "celery"]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/healthz"), timeout=60, message="gunicorn answering")
        yield base
    finally:
        for proc in servers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in servers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _answers(url) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:  # refused, or a worker still booting
        return False


def test_the_documented_production_processes_serve_pages_and_static_files_and_deliver(
    require_services, production, org, receiver
):
    # The login page, through gunicorn with DEBUG off (as behind the TLS proxy).
    login = requests.get(f"{production}/accounts/login/", headers=PROXY, timeout=10)
    assert login.status_code == 200
    assert "Log in" in login.text and "Username" in login.text
    # Its stylesheet: collected, hashed by the manifest, served by WhiteNoise with a long cache.
    css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', login.text)
    assert css, "the stylesheet link is not a hashed static file"
    static = requests.get(f"{production}{css.group(1)}", headers=PROXY, timeout=10)
    assert static.status_code == 200
    assert static.headers["Content-Type"].startswith("text/css")
    assert "immutable" in static.headers["Cache-Control"]
    assert static.text == (ROOT / "static" / "css" / "app.css").read_text()

    # Plain HTTP on the private network: pages go to HTTPS, probes answer.
    assert requests.get(f"{production}/accounts/login/", allow_redirects=False, timeout=10).status_code == 301
    assert requests.get(f"{production}/healthz", allow_redirects=False, timeout=10).status_code == 200

    # An event recorded by domain code reaches the HTTPS receiver, signed.
    subscription, secret = make_subscription(org, url=receiver.url, activity_types=["lot.created"])
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "PROD-1"})
    (request,) = receiver.wait_for(1, timeout=60)
    assert Webhook(secret).verify(request.body, request.headers)["id"] == event.webhook_id
    wait_until(lambda: Delivery.objects.filter(event=event, state=Delivery.State.SUCCEEDED).exists(),
               message="the delivery recorded as succeeded")

    # The worker and the scheduler show through /readyz; /metrics answers the token.
    wait_until(lambda: requests.get(f"{production}/readyz", timeout=10).status_code == 200, timeout=60,
               message="/readyz ok")
    metrics = requests.get(f"{production}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert metrics.status_code == 200
    assert "webhooks_deliveries_due 0.0" in metrics.text
