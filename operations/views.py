"""/healthz, /readyz and /metrics: for load balancers, orchestrators and Prometheus, not for people."""

import hmac
import logging
import time

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from delivery.metrics import metrics_registry
from operations.heartbeat import HeartbeatCollector
from operations.readiness import readiness, readiness_for_anyone

logger = logging.getLogger(__name__)

# A failing check is logged once, then again only if its error changes or after this long (probes come every few s).
LOG_AGAIN_AFTER = 60.0
_logged: dict[str, tuple[str, float]] = {}


@never_cache
@require_GET
def healthz(request):
    """200 while this process answers; touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """200 when the database, the broker, a worker and the scheduler are all there; 503 naming what failed.

    Anyone learns which check fails; its details (error class and message) go to the log, and to
    a caller with the metrics token.
    """
    result = readiness()
    _log_failures(result)
    if settings.METRICS_TOKEN and _authorised(request):
        body = {"status": "ok" if result["ok"] else "failing", "checks": result["checks"]}
    else:
        body = readiness_for_anyone(result)
    return JsonResponse(body, status=200 if result["ok"] else 503)


def _log_failures(result: dict) -> None:
    now = time.monotonic()
    for name, check in result["checks"].items():
        if check["ok"]:
            _logged.pop(name, None)
            continue
        error = check.get("error", "")
        last = _logged.get(name)
        if last is None or last[0] != error or now - last[1] > LOG_AGAIN_AFTER:
            _logged[name] = (error, now)
            logger.warning("Readiness check %s failing: %s", name, error, extra={"check": name})


def _authorised(request) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    return given.startswith("Bearer ") and hmac.compare_digest(given[len("Bearer "):].encode(), token.encode())


@never_cache
@require_GET
def metrics(request):
    """Prometheus text format, for a bearer of METRICS_TOKEN; 404 while no token is configured."""
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are off: set METRICS_TOKEN.")
    if not _authorised(request):
        response = HttpResponse("A valid bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = metrics_registry()
    registry.register(HeartbeatCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
