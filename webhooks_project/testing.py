"""A pytest plugin loaded before Django (`-p webhooks_project.testing` in pytest.ini).

It picks the stores the suite runs against, before settings are read, from
TEST_STORES: `embedded` is SQLite and the embedded broker (what `make run`
uses), `services` is PostgreSQL and Redis on 127.0.0.1. `make test` runs the
suite once per store (services only when they answer, always and never skipped
with REQUIRE_SERVICES=1). Each run gets its own database name, queue and broker
folder, so runs can overlap.
"""

import os
import socket
import tempfile

import pytest

RUN_ID = f"{os.getpid()}"
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/webhooks")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
STORES = os.environ.get("TEST_STORES", "services")
if STORES not in ("embedded", "services"):
    raise SystemExit(f"TEST_STORES must be 'embedded' or 'services', not {STORES!r}")
POSTGRES = STORES == "services" and (REQUIRE_SERVICES or _answers("127.0.0.1", 5432))
REDIS = STORES == "services" and (REQUIRE_SERVICES or _answers("127.0.0.1", 6379))

os.environ["READ_DOT_ENV"] = "false"  # a developer's .env from `make run` must not change the suite
os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "x" * 40)
os.environ.setdefault("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true")
os.environ["CELERY_TASK_DEFAULT_QUEUE"] = f"webhooks-test-{RUN_ID}"
TMP = tempfile.mkdtemp(prefix=f"webhooks-test-{RUN_ID}-")
# Each run's own metric files (prometheus-client multiprocess mode), shared with the processes it starts.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(TMP, "metrics")
if "DATABASE_URL" not in os.environ:
    if POSTGRES:
        os.environ["DATABASE_URL"] = PG_URL
        os.environ["TEST_DATABASE_NAME"] = f"test_webhooks_{RUN_ID}"
    else:
        os.environ["TEST_DATABASE_NAME"] = os.path.join(TMP, "test.sqlite3")
if "CELERY_BROKER_URL" not in os.environ:
    if REDIS:
        os.environ["CELERY_BROKER_URL"] = REDIS_URL
    else:
        os.environ["CELERY_FILESYSTEM_BROKER_DIR"] = os.path.join(TMP, "broker")


def pytest_report_header(config):
    return [
        f"webhooks: stores {STORES}, database {os.environ.get('DATABASE_URL', 'sqlite')}, "
        f"broker {os.environ.get('CELERY_BROKER_URL', 'filesystem (embedded)')}, "
        f"REQUIRE_SERVICES={int(REQUIRE_SERVICES)}"
    ]


@pytest.fixture(scope="session")
def require_services():
    """Return nothing; fail (never skip) when REQUIRE_SERVICES=1 and a service is down."""
    if REQUIRE_SERVICES and STORES == "services":
        for name, port in (("PostgreSQL", 5432), ("Redis", 6379)):
            if not _answers("127.0.0.1", port):
                pytest.fail(f"{name} is not reachable on 127.0.0.1:{port} and REQUIRE_SERVICES=1")


def pytest_collection_modifyitems(config, items):
    """On the embedded store, deselect (not skip) the tests that are about PostgreSQL or Redis themselves."""
    if STORES != "embedded":
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("services_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
