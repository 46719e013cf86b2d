"""Log formatting for every process (web, worker, beat): text or JSON lines, extra fields kept, no secrets.

Wired in settings.LOGGING; LOG_FORMAT=json picks JsonLineFormatter. A call such as
`logger.info("sent", extra={"event_id": ..., "outcome": "succeeded"})` shows
its extra fields in both formats: as keys of the JSON object, or as key=value
after the message.
"""

import logging

from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# An extra field whose name contains one of these is never written out.
_SECRET_WORDS = ("secret", "password", "token", "authorization", "signature", "cookie", "api_key", "private_key")
REDACTED = "[redacted]"
# Celery's per-task lines ("received", "succeeded", beat's "Sending due task") of tasks scheduled this often or more.
QUIET_PERIOD = 60.0
_CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace", "celery.beat")


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class RedactSecrets(logging.Filter):
    """Replace the value of any extra field named like a secret; the record is always kept."""

    def filter(self, record):
        for key in _extras(record):
            if any(word in key.lower() for word in _SECRET_WORDS):
                setattr(record, key, REDACTED)
        return True


class QuietPeriodicTasks(logging.Filter):
    """Drop Celery's routine lines about frequent periodic tasks unless the root logger is at DEBUG.

    The sweeper and the heartbeat run every few seconds; their "received",
    "succeeded" and "Sending due task" lines buried the real ones. Their
    warnings and errors (a task that failed) still pass.
    """

    _names: frozenset | None = None

    @classmethod
    def quiet_names(cls) -> frozenset:
        if cls._names is None:
            names = set()
            for entry, spec in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).items():
                if isinstance(spec.get("schedule"), int | float) and spec["schedule"] < QUIET_PERIOD:
                    names.update((entry, spec["task"]))
            cls._names = frozenset(names)
        return cls._names

    def filter(self, record):
        if record.levelno > logging.INFO or not record.name.startswith(_CELERY_TASK_LOGGERS):
            return True
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        message = record.getMessage()
        return not any(name in message for name in self.quiet_names())


class TextFormatter(logging.Formatter):
    """`time level logger message key=value ...`: the extra fields after the message.

    Only plain values: an object or a dict (Django's request, Celery's task data with
    its traceback again) would bury the line; the JSON format keeps them.
    """

    def __init__(self, fmt="%(asctime)s %(levelname)s %(name)s %(message)s", **kwargs):
        super().__init__(fmt, **kwargs)

    def format(self, record):
        line = super().format(record)
        extras = {k: v for k, v in _extras(record).items() if isinstance(v, str | int | float | bool | None)}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, the extra fields, and exc_info if any."""

    def __init__(self, **kwargs):
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")  # ISO 8601, UTC
        super().__init__(**kwargs)
