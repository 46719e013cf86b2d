"""/healthz, /readyz and /metrics: for load balancers, orchestrators and Prometheus, not for people."""

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from delivery.metrics import metrics_registry
from operations.heartbeat import HeartbeatCollector
from operations.readiness import readiness


@never_cache
@require_GET
def healthz(request):
    """200 while this process answers; touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """200 when the database, the broker, a worker and the scheduler are all there; 503 naming what failed."""
    result = readiness()
    body = {"status": "ok" if result["ok"] else "failing", "checks": result["checks"]}
    return JsonResponse(body, status=200 if result["ok"] else 503)


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
