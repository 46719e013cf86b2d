"""The address a request came from, as login throttling counts it."""

import ipaddress

from django.conf import settings


def client_address(request) -> str:
    """Return the client's address: REMOTE_ADDR, or behind TRUSTED_PROXIES proxies the one they saw.

    Each trusted proxy appends the address it saw to X-Forwarded-For; whatever lies to the left
    was written by the client and proves nothing. Behind a proxy REMOTE_ADDR is the proxy's own,
    so without this every user would share one address, and one failure count.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXIES
    if not proxies:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        return remote  # it did not come through every proxy: take the address we can see
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
