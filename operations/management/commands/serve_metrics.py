"""`manage.py serve_metrics --port 9108`: this machine's process counters, for a machine with no web process.

prometheus-client's multiprocess files are per machine: /metrics on a web machine
adds up the processes of that machine only. A machine that runs only workers
serves its own counters with this (same METRICS_TOKEN), without the database
gauges, which the web machines already report (they would be counted twice).
"""

import hmac
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from prometheus_client import make_wsgi_app

from delivery.metrics import metrics_registry


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass  # one line per scrape would be noise


def metrics_app(token: str):
    """Return a WSGI app that answers the machine's counters to a bearer of token, 401 to anyone else."""
    inner = make_wsgi_app(metrics_registry(include_database=False))

    def app(environ, start_response):
        given = environ.get("HTTP_AUTHORIZATION", "")
        if not (given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode())):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", 'Bearer realm="metrics"')])
            return [b"A valid bearer token is required.\n"]
        return inner(environ, start_response)

    return app


class Command(BaseCommand):
    help = "Serve this machine's worker counters in Prometheus format (for machines without a web process)."

    def add_arguments(self, parser):
        # Prometheus scrapes it from another machine; the token guards it.
        parser.add_argument("--bind", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")  # noqa: S104
        parser.add_argument("--port", type=int, default=9108, help="port (default 9108)")

    def handle(self, *args, bind, port, **options):
        if not settings.METRICS_TOKEN:
            raise CommandError("Set METRICS_TOKEN: the counters are only served to a bearer of it.")
        server = make_server(bind, port, metrics_app(settings.METRICS_TOKEN), WSGIServer, _QuietHandler)
        self.stdout.write(f"Serving this machine's counters on http://{bind}:{server.server_port}/metrics",
                          ending="\n")
        self.stdout.flush()
        server.serve_forever()
