"""gunicorn's settings file, read from the working directory: its own log lines in our format.

gunicorn logs startup, worker boots and (with --access-logfile -) one line per request
through its loggers `gunicorn.error` and `gunicorn.access`, which do not propagate; this
gives them the handler of every other process (text, or JSON with LOG_FORMAT=json).
"""

import os

from operations.log_format import logging_config

logconfig_dict = logging_config(log_format=os.environ.get("LOG_FORMAT", "text"),
                                loggers=("gunicorn.error", "gunicorn.access"))

# No control socket (gunicornc): its default path is one per user, shared by every gunicorn of the
# machine, and deploys here signal the master instead (SIGHUP reloads, SIGTERM stops).
control_socket_disable = True
