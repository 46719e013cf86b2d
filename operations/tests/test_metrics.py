"""/metrics: protected by a bearer token; counters from every process, gauges counted in the database."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import ROOT, make_subscription
from delivery import metrics
from delivery.models import Delivery, EndpointHealth
from operations.tests.scrape import TOKEN, scrape, value
from subscriptions.activity import record_activity
from subscriptions.models import Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _web(web_settings):
    return web_settings


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def test_metrics_are_off_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_metrics_need_the_bearer_token(client, token, header):
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"webhooks_" not in response.content


def test_metrics_answer_prometheus_text_to_the_token(client, token):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"# TYPE webhooks_deliveries_due gauge" in response.content


def test_due_backlog_and_oldest_age_are_counted_in_the_database(client, token, org):
    subscription, _ = make_subscription(org)
    events = [record_activity(organisation=org, activity_type="lot.created", data={"n": i}) for i in range(3)]
    # One is not due yet (a retry scheduled later), one is due since 90 s, one is finished.
    now = timezone.now()
    first, later, done = (Delivery.objects.get(event=e) for e in events)
    Delivery.objects.filter(id=first.id).update(next_attempt_at=now - timedelta(seconds=90))
    Delivery.objects.filter(id=later.id).update(next_attempt_at=now + timedelta(minutes=5))
    Delivery.objects.filter(id=done.id).update(state=Delivery.State.SUCCEEDED, next_attempt_at=None)

    samples = scrape(client)

    assert value(samples, "webhooks_deliveries_due") == 1
    assert 90 <= value(samples, "webhooks_oldest_due_delivery_age_seconds") < 150


def test_oldest_age_is_zero_when_nothing_is_due(client, token, org):
    samples = scrape(client)
    assert value(samples, "webhooks_deliveries_due") == 0
    assert value(samples, "webhooks_oldest_due_delivery_age_seconds") == 0


def test_open_breakers_and_paused_subscriptions_are_counted(client, token, org):
    a, _ = make_subscription(org, url="https://a.example.com/in")
    b, _ = make_subscription(org, url="https://b.example.com/in")
    c, _ = make_subscription(org, url="https://c.example.com/in")
    EndpointHealth.objects.create(subscription=a, url=a.url, consecutive_failures=5,
                                  open_until=timezone.now() + timedelta(minutes=1))
    EndpointHealth.objects.create(subscription=b, url=b.url, consecutive_failures=1)
    Subscription.objects.filter(id__in=[a.id, b.id]).update(state=Subscription.State.PAUSED)
    # A deleted subscription is not "paused" for an operator, whatever its state says.
    Subscription.objects.filter(id=b.id).update(deleted_at=timezone.now())

    samples = scrape(client)

    assert value(samples, "webhooks_breakers_open") == 1
    assert value(samples, "webhooks_subscriptions_paused") == 1
    assert c.state == Subscription.State.ACTIVE


def test_recorded_attempts_events_and_requeues_are_counted(client, token):
    before = scrape(client)

    metrics.attempt_recorded(outcome="succeeded", error_kind="none", duration_ms=120)
    metrics.attempt_recorded(outcome="retrying", error_kind="http_5xx", duration_ms=30)
    metrics.attempt_recorded(outcome="retrying", error_kind="http_5xx", duration_ms=2000)
    metrics.events_recorded(count=3)
    metrics.sweeper_requeued(count=2)
    metrics.sweeper_requeued(count=0)

    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("webhooks_attempts_total", outcome="succeeded", error_kind="none") == 1
    assert delta("webhooks_attempts_total", outcome="retrying", error_kind="http_5xx") == 2
    assert delta("webhooks_events_recorded_total") == 3
    assert delta("webhooks_sweeper_requeued_total") == 2
    assert delta("webhooks_attempt_duration_seconds_count") == 3
    assert delta("webhooks_attempt_duration_seconds_sum") == pytest.approx(2.15)
    assert delta("webhooks_attempt_duration_seconds_bucket", le="0.25") == 2


def test_label_values_stay_bounded(client, token):
    before = scrape(client)

    metrics.attempt_recorded(outcome="https://customer.example.com/", error_kind="ECONNRESET 10.0.0.7", duration_ms=1)

    after = scrape(client)
    new = {key for key in after if key[0] == "webhooks_attempts_total"} - set(before)
    assert all(dict(labels)["outcome"] in (*metrics.OUTCOMES, "other") for _, labels in new)
    assert value(after, "webhooks_attempts_total", outcome="other", error_kind="other") == (
        value(before, "webhooks_attempts_total", outcome="other", error_kind="other") + 1
    )


@pytest.mark.parametrize(("status_code", "error_kind", "label"), [
    (200, "", "none"), (204, "", "none"), (301, "", "http_3xx"), (410, "", "http_4xx"),
    (503, "", "http_5xx"), (None, "timeout", "timeout"), (None, "tls", "tls"), (None, "weird", "other"),
])
def test_error_kind_label_of_an_attempt(status_code, error_kind, label):
    assert metrics.error_kind_for(status_code=status_code, error_kind=error_kind) == label


def test_counters_of_another_process_are_added_up(client, token):
    """Multiprocess mode: what a worker process counted shows in the web process's /metrics."""
    before = scrape(client)
    code = ("import django; django.setup(); from delivery import metrics; "
            "metrics.attempt_recorded(outcome='failed', error_kind='dns', duration_ms=5); "
            "metrics.events_recorded(count=7)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webhooks_project.settings"}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)

    after = scrape(client)

    assert value(after, "webhooks_events_recorded_total") - value(before, "webhooks_events_recorded_total") == 7
    assert (value(after, "webhooks_attempts_total", outcome="failed", error_kind="dns")
            - value(before, "webhooks_attempts_total", outcome="failed", error_kind="dns")) == 1


def test_every_series_of_the_grafana_dashboard_is_exported(client, token):
    import json
    import re

    metrics.attempt_recorded(outcome="succeeded", error_kind="none", duration_ms=1)
    metrics.events_recorded(count=1)
    metrics.sweeper_requeued(count=1)
    exported = {name for name, _ in scrape(client)}
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"\bwebhooks_[a-z_]+", target["expr"])}
    assert used and used <= exported, used - exported


def test_a_worker_machine_serves_its_counters_without_the_database_gauges(token):
    """`manage.py serve_metrics`, run as a process: counters to the token only, no gauge counted twice."""
    import re
    import signal

    import requests

    metrics.sweeper_requeued(count=4)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webhooks_project.settings", "METRICS_TOKEN": TOKEN,
           "PYTHONUNBUFFERED": "1", "DEBUG": "false"}
    proc = subprocess.Popen([sys.executable, "manage.py", "serve_metrics", "--bind", "127.0.0.1", "--port", "0"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(http://\S+/metrics)", proc.stdout.readline()).group(1)
        assert requests.get(url, timeout=10).status_code == 401
        answer = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert answer.status_code == 200
    assert float(re.search(r"^webhooks_sweeper_requeued_total (\S+)", answer.text, re.M).group(1)) >= 4
    assert "webhooks_deliveries_due" not in answer.text
