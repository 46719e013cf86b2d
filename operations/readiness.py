"""Readiness: can this deployment deliver right now? One function that /readyz and check_health share."""

import re

from django.db import connection

from operations.heartbeat import STALE_AFTER, heartbeat_ages, heartbeat_is_fresh

BROKER_TIMEOUT = 2.0


def _error(exc: Exception) -> str:
    # The class and message, with any user:password in a URL masked, cut short.
    return re.sub(r"://[^@/\s]*@", "://***@", f"{type(exc).__name__}: {exc}")[:300]


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _broker() -> dict:
    from webhooks_project.celery import app

    with app.connection_for_write(connect_timeout=BROKER_TIMEOUT) as conn:
        # One try, no retry loop: a probe must answer within its own timeout.
        conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
    return {"ok": True}


def _heartbeats() -> dict:
    checks = {}
    for role, age in heartbeat_ages().items():
        check = {"ok": heartbeat_is_fresh(age), "seconds_since_seen": None if age is None else round(age, 1)}
        if not check["ok"]:
            check["error"] = (f"no {role} heartbeat yet" if age is None
                              else f"no {role} heartbeat for {age:.0f} s (limit {STALE_AFTER:.0f} s)")
        checks[role] = check
    return checks


def readiness() -> dict:
    """Return {"ok": bool, "checks": {name: {"ok": bool, "error"?: str}}} for database, broker, worker, scheduler."""
    checks = {}
    for name, check in (("database", _database), ("broker", _broker)):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure of the dependency is the answer
            checks[name] = {"ok": False, "error": _error(exc)}
    if checks["database"]["ok"]:
        try:
            checks.update(_heartbeats())
        except Exception as exc:  # noqa: BLE001 - e.g. the table is not migrated yet
            checks["worker"] = checks["scheduler"] = {"ok": False, "error": _error(exc)}
    else:
        checks["worker"] = checks["scheduler"] = {"ok": False, "error": "unknown: the database is unreachable"}
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}
