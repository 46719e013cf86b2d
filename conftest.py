"""Shared fixtures: named users, factories, a real HTTPS receiver, real Celery workers."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import OperationalError, connection

from delivery.tests.receiver import Receiver
from organisations.models import Membership, Organisation
from subscriptions.services import subscription_create

ROOT = Path(__file__).resolve().parent


# --- factories ---------------------------------------------------------------

def make_organisation(slug="acme", name=None) -> Organisation:
    return Organisation.objects.create(slug=slug, name=name or slug.title())


def make_user(username, organisation=None, role=Membership.Role.ADMIN, password="correct horse battery"):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password=password)
    if organisation is not None:
        Membership.objects.create(user=user, organisation=organisation, role=role)
    return user


def make_subscription(organisation, url="https://hooks.example.com/in", activity_types=("lot.created",), **kwargs):
    """Return (subscription, secret)."""
    return subscription_create(organisation=organisation, url=url, activity_types=activity_types, **kwargs)


@pytest.fixture
def org(db):
    return make_organisation("acme", "Acme Cultivation")


@pytest.fixture
def other_org(db):
    return make_organisation("globex", "Globex Farms")


@pytest.fixture
def alice(org):
    """An admin of org."""
    return make_user("alice", org, Membership.Role.ADMIN)


@pytest.fixture
def bob(org):
    """A member (not an admin) of org."""
    return make_user("bob", org, Membership.Role.MEMBER)


@pytest.fixture
def mallory(other_org):
    """An admin of another organisation."""
    return make_user("mallory", other_org, Membership.Role.ADMIN)


@pytest.fixture
def web_settings(settings):
    """Pages over plain HTTP in tests: no HTTPS redirect or Secure cookies, static files without a manifest."""
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    return settings


@pytest.fixture
def site(web_settings, live_server):
    """pytest-django's live server, its middleware rebuilt under web_settings (the pages' and the API's tests).

    The live server is session-scoped and Django's SecurityMiddleware reads
    SECURE_SSL_REDIRECT once, when the handler is built; rebuild it for this test.
    """
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.handlers.wsgi import WSGIHandler

    httpd = live_server.thread.httpd
    original = httpd.get_app()
    httpd.set_app(StaticFilesHandler(WSGIHandler()))
    yield live_server
    httpd.set_app(original)


@pytest.fixture
def superuser(db):
    """A Django superuser (the admin site), member of no organisation."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", password="root-password-123")


# --- a real HTTPS receiver -----------------------------------------------------

@pytest.fixture
def receiver(tmp_path, settings):
    """A trustme-certified HTTPS receiver on 127.0.0.1 that this process trusts."""
    with Receiver(tmp_path) as r:
        settings.WEBHOOKS_CA_BUNDLE = str(r.ca_path)
        yield r


# --- real Celery processes -----------------------------------------------------

def database_url() -> str:
    """Return a DATABASE_URL for the database the tests are using right now."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{s['NAME']}"


class CeleryProcess:
    """A `celery -A webhooks_project worker|beat` child process with the test's settings."""

    def __init__(self, *args, env=None, log_path=None):
        self.args = args
        self.env = env or {}
        self.log_path = log_path
        self.proc = None

    def start(self):
        # self.env comes last: a test may point a process elsewhere (its own Redis, a proxied database).
        env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1", **self.env}
        env.pop("TEST_DATABASE_NAME", None)
        self.log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "webhooks_project", *self.args],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self):
        self.ask_to_stop()
        self.wait_for_stop()

    def ask_to_stop(self):
        """Send SIGTERM (a worker's warm shutdown: it finishes its tasks and gives back the messages it holds)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)

    def wait_for_stop(self, timeout=15):
        """Wait for the process to end after ask_to_stop(); kill it if it has not within `timeout` s."""
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


WORKER_ARGS = ("worker", "--pool", "threads", "--concurrency", "8", "--without-mingle",
               "--without-gossip", "--without-heartbeat", "--loglevel", "INFO")


@pytest.fixture
def celery_process(tmp_path, receiver):
    """Return a starter of Celery processes (stopped after the test); each trusts the receiver's CA."""
    started = []

    def start(*args, env=None):
        merged = {"REQUESTS_CA_BUNDLE": str(receiver.ca_path), **(env or {})}
        process = CeleryProcess(*args, env=merged, log_path=tmp_path / f"celery-{len(started)}.log").start()
        started.append(process)
        return process

    yield start
    # All asked at once: each warm shutdown waits for its running tasks (and on Redis for its last poll).
    for process in started:
        process.ask_to_stop()
    for process in started:
        process.wait_for_stop()


@pytest.fixture
def worker(celery_process):
    """A real Celery worker (thread pool) and beat (the sweeper), started for this test."""
    process = celery_process(*WORKER_ARGS)
    celery_process("beat", "--loglevel", "INFO", "--schedule", str(Path(process.log_path).parent / "beat-schedule"))
    return process


def wait_until(predicate, timeout=30.0, interval=0.1, message="condition"):
    """Return predicate()'s first truthy value; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {message}")


def wait_until_finished(deliveries, timeout=60.0) -> None:
    """Wait until none of `deliveries` (a queryset) is unfinished; fail the test after timeout seconds.

    Then no request of theirs can still be on its way to a receiver: a sender sends only what it has
    claimed, a claimed delivery stays pending until its attempt is recorded, and a worker that died
    mid-request took its connection with it. (Where tests used to sleep "for a duplicate to land".)
    """
    from delivery.models import Delivery

    wait_until(lambda: not deliveries.filter(state__in=Delivery.UNFINISHED).exists(), timeout=timeout,
               message="every delivery finished")


@pytest.fixture(scope="session", autouse=True)
def _drop_stray_test_db_sessions(django_db_setup, django_db_blocker):
    """Yield; afterwards end other sessions on the test database so that it can be dropped.

    A worker process killed mid-query, or a thread's connection, can outlive its test by a
    moment; without this PostgreSQL refuses to drop the test database and it is left behind.
    """
    yield
    if connection.vendor != "postgresql":
        return
    try:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    except OperationalError:
        pass  # no test of this session used the database (e.g. one file of broker tests): nothing to end


# --- the production sending path, in-process -------------------------------------

def send_now(delivery_id):
    """Run the worker's task for the delivery's endpoint in-process; return the delivery's new attempt, or None."""
    from delivery.models import Attempt, Delivery
    from delivery.tasks import send_endpoint

    subscription_id = Delivery.objects.filter(id=delivery_id).values_list("subscription_id", flat=True).get()
    before = Attempt.objects.filter(delivery_id=delivery_id).order_by("-number").first()
    send_endpoint(str(subscription_id))
    after = Attempt.objects.filter(delivery_id=delivery_id).order_by("-number").first()
    return None if after is None or (before is not None and after.pk == before.pk) else after
