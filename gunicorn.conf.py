"""gunicorn's settings file, read from the working directory: its own log lines in our format.

gunicorn logs startup, worker boots and (with --access-logfile -) one line per request
through its loggers `gunicorn.error` and `gunicorn.access`; this gives them the handler
of every other process (text, or JSON with LOG_FORMAT=json; operations/log_format.py).
"""

import os

_format = os.environ.get("LOG_FORMAT", "text")

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "operations.log_format.TextFormatter"},
        "json": {"()": "operations.log_format.JsonLineFormatter"},
    },
    "filters": {"redact_secrets": {"()": "operations.log_format.RedactSecrets"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": _format if _format == "json" else "text",
                    "filters": ["redact_secrets"]},
    },
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}

# No control socket (gunicornc): its default path is one per user, shared by every gunicorn of the
# machine, and deploys here signal the master instead (SIGHUP reloads, SIGTERM stops).
control_socket_disable = True
