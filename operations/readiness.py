"""Readiness: can this deployment deliver right now? One function that /readyz and check_health share.

readiness() has the details (error classes and messages), for check_health, the logs and
a caller with the metrics token. Anyone else learns only which check is failing
(readiness_for_anyone): an error message names hosts, users and sometimes part of a
password (a database's "role ... does not exist", a broker URL cut at a `#`).
"""

import re
from urllib.parse import unquote

from django.conf import settings
from django.db import connection

from operations.heartbeat import STALE_AFTER, heartbeat_ages, heartbeat_is_fresh
from webhooks_project.celery import app

BROKER_TIMEOUT = 2.0
MASK = "***"
# A URL's user:password@, whatever the password holds ("/", "?", "#" included).
_USERINFO = re.compile(r"(?<=://)[^@\s]*@")
_URL_DELIMITERS = re.compile(r"[:/?#@\[\]]")


def _credentials() -> list[str]:
    """Return the configured database and broker user names and passwords, and the parts a parser may cut them into."""
    found = [str(settings.DATABASES["default"].get(key) or "") for key in ("USER", "PASSWORD")]
    # Read by hand, not by a URL parser: a `#` or `?` in a password would end the parser's userinfo early.
    userinfo = settings.CELERY_BROKER_URL.partition("://")[2].rpartition("@")[0]
    for text in (userinfo, unquote(userinfo)):
        found += [text, *_URL_DELIMITERS.split(text)]
    # Longest first; very short pieces would mask ordinary words.
    return sorted({f for f in found if len(f) >= 3}, key=len, reverse=True)


def _error(exc: Exception) -> str:
    """Return the class and message, every configured user name and password masked, cut short."""
    text = _USERINFO.sub(MASK + "@", f"{type(exc).__name__}: {exc}")
    for credential in _credentials():
        text = text.replace(credential, MASK)
    return text[:300]


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _broker() -> dict:
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


def readiness_for_anyone(result: dict) -> dict:
    """Return what /readyz tells a caller without the metrics token: each check's name and "ok" or "failing"."""
    return {"status": "ok" if result["ok"] else "failing",
            "checks": {name: "ok" if check["ok"] else "failing" for name, check in result["checks"].items()}}
