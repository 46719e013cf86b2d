"""Who calls the API: an organisation's key in `Authorization: Bearer whk_...`, its scope, its rate.

A key costs one indexed query (its hash, joined to the organisation) and, at most once a minute,
the write of its last use. Keys authenticate only the API; the pages keep their sessions and CSRF.
"""

import math
import time

from django.conf import settings
from django.core.cache import cache
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle

from api.models import ApiKey
from api.problems import Problem
from api.selectors import api_key_for_token
from api.services import api_key_used

# Bodies larger than this are refused (413) before they are read: a batch of 100 events fits.
MAX_REQUEST_BYTES = 2 * 1024 * 1024
WINDOW_SECONDS = 60


class KeyAuth(HttpBearer):
    """Bearer key with a scope: no key or an unknown, revoked or expired one is 401; a key without the scope, 403."""

    def __init__(self, scope: str | None):
        super().__init__()
        self.scope = scope

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_REQUEST_BYTES:
            raise Problem(413, f"The request body is {length:,} bytes; the limit is {MAX_REQUEST_BYTES:,}.")
        return super().__call__(request)

    def authenticate(self, request, token: str) -> ApiKey | None:
        api_key = api_key_for_token(token=token.strip())
        if api_key is None:
            return None
        if self.scope is not None and not api_key.grants(self.scope):
            raise AuthorizationError(message=f"This key does not have the {self.scope!r} scope.")
        api_key_used(api_key=api_key)
        return api_key


READ, WRITE, EVENTS = (KeyAuth(scope) for scope in ApiKey.Scope.values)
ANY = KeyAuth(None)  # the catalogue: any key of the organisation


class PerKeyRate(BaseThrottle):
    """At most WEBHOOKS_API_RATE_LIMIT requests per key per minute (a fixed window counted in the cache)."""

    def allow_request(self, request) -> bool:
        api_key = getattr(request, "auth", None)
        if api_key is None:
            return True
        window = int(time.time() // WINDOW_SECONDS)
        counter = f"api-rate:{api_key.id}:{window}"
        cache.add(counter, 0, timeout=WINDOW_SECONDS + 5)
        try:
            count = cache.incr(counter)
        except ValueError:  # evicted between add and incr: this request starts the count again
            cache.set(counter, 1, timeout=WINDOW_SECONDS + 5)
            count = 1
        return count <= settings.WEBHOOKS_API_RATE_LIMIT

    def wait(self) -> float:
        """Return the seconds until the next window (this object is shared by threads: nothing kept on it)."""
        now = time.time()
        return max(1, math.ceil((int(now // WINDOW_SECONDS) + 1) * WINDOW_SECONDS - now))
