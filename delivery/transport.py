"""The HTTP transport: one POST, bounded in time and memory, never redirected.

Each worker thread keeps one requests session, so TLS contexts and keep-alive
connections are reused across deliveries. Outside development the session is
requests-hardened's: every address actually connected to is checked against
private, loopback, link-local and reserved ranges (DNS rebinding included).
"""

import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import requests
import urllib3
from django.conf import settings
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter

from delivery.addresses import blocked_reason

USER_AGENT = "GrowerIQ-Webhooks/1.0"
READ_CHUNK = 16 * 1024
_local = threading.local()


@dataclass
class Response:
    """What one POST produced: an answer, or an error by kind."""

    duration_ms: int
    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False
    error_kind: str = ""
    error_message: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _Deadline(Exception):
    pass


class _AddressPolicyAdapter(IPFilterAdapter):
    """requests-hardened's adapter (resolve once, check, pin that address for the
    connection and keep the name for TLS), plus our stricter policy on the pinned
    address: the same delivery.addresses rule the form applies at save time."""

    def __init__(self, *, is_https_proto: bool):
        super().__init__(is_https_proto=is_https_proto, allow_loopback=False)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pinned = host_params["host"].strip("[]")
        if blocked_reason(pinned):
            raise InvalidIPAddress(pinned)
        return host_params, pool_kwargs


def _new_session() -> requests.Session:
    if settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        session = requests.Session()
    else:
        session = HTTPSession(
            Config(
                ip_filter_enable=True,
                ip_filter_allow_loopback_ips=False,
                never_redirect=True,
                default_timeout=(settings.WEBHOOKS_TIMEOUT, settings.WEBHOOKS_TIMEOUT),
            )
        )
        session.mount("https://", _AddressPolicyAdapter(is_https_proto=True))
        session.mount("http://", _AddressPolicyAdapter(is_https_proto=False))
    # Proxies and .netrc from the environment must not redirect or decorate
    # our requests; the CA bundle is passed explicitly on each request.
    session.trust_env = False
    session.headers["User-Agent"] = USER_AGENT
    return session


def session() -> requests.Session:
    """Return this thread's session (created once per thread, then reused)."""
    key = (settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS, settings.WEBHOOKS_TIMEOUT)
    current = getattr(_local, "session", None)
    if current is None or getattr(_local, "key", None) != key:
        if current is not None:
            current.close()
        current = _local.session = _new_session()
        _local.key = key
    return current


def _verify() -> str | bool:
    return settings.WEBHOOKS_CA_BUNDLE or True


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST body to url and return the Response; never raises for network trouble."""
    timeout = settings.WEBHOOKS_TIMEOUT
    limit = settings.WEBHOOKS_RESPONSE_BODY_LIMIT
    started = time.monotonic()
    deadline = started + timeout

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        resp = session().post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=(min(timeout, 5.0), timeout),
            allow_redirects=False,
            verify=_verify(),
            stream=True,
        )
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded attempt
        kind, message = classify(exc)
        return Response(duration_ms=elapsed_ms(), error_kind=kind, error_message=message)

    try:
        body_bytes, truncated = _read_capped(resp, limit=limit, deadline=deadline)
    except _Deadline:
        resp.close()
        return Response(
            duration_ms=elapsed_ms(), status_code=resp.status_code, headers=dict(resp.headers),
            error_kind="timeout", error_message=f"Response body not complete within {timeout:g} s.",
        )
    except Exception as exc:  # noqa: BLE001
        resp.close()
        kind, message = classify(exc)
        return Response(duration_ms=elapsed_ms(), status_code=resp.status_code,
                        headers=dict(resp.headers), error_kind=kind, error_message=message)
    if truncated:
        # Do not drain an oversized or endless body: drop the connection instead.
        resp.close()
    return Response(
        duration_ms=elapsed_ms(), status_code=resp.status_code, headers=dict(resp.headers),
        body=body_bytes, truncated=truncated,
    )


def _read_capped(resp: requests.Response, *, limit: int, deadline: float) -> tuple[bytes, bool]:
    """Return up to limit bytes of the body and whether more was there, all before deadline.

    The socket timeout is narrowed to the time left before each read, so a
    receiver dripping one byte at a time cannot hold the worker past the deadline.
    """
    raw: urllib3.HTTPResponse = resp.raw
    sock = _socket_of(raw)
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Deadline
        if sock is not None:
            sock.settimeout(remaining)
        try:
            chunk = raw.read1(READ_CHUNK, decode_content=True) if hasattr(raw, "read1") else raw.read(READ_CHUNK)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            raise _Deadline from None
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True


def _socket_of(raw) -> socket.socket | None:
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    return getattr(connection, "sock", None)


def classify(exc: BaseException) -> tuple[str, str]:
    """Return (error kind, short message) for a failed request; never includes secrets."""
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain)
    for e in chain:
        if isinstance(e, InvalidIPAddress):
            return "blocked", f"The endpoint resolves to a blocked address ({e})."
    for e in chain:
        if isinstance(e, (requests.exceptions.SSLError, ssl.SSLError)):
            return "tls", _short(f"TLS error: {e}")
    for e in chain:
        if isinstance(e, socket.gaierror) or "Failed to resolve" in str(e) or "Name or service not known" in str(e):
            return "dns", "DNS lookup failed for the endpoint's host."
    for e in chain:
        # urllib3's NewConnectionError subclasses its ConnectTimeoutError: test refusals first.
        if isinstance(e, (ConnectionRefusedError, ConnectionResetError, urllib3.exceptions.NewConnectionError)):
            return "connection", _short(f"Connection failed: {e}")
    for e in chain:
        if isinstance(e, (requests.exceptions.Timeout, TimeoutError, socket.timeout,
                          urllib3.exceptions.TimeoutError)):
            return "timeout", f"No answer within {settings.WEBHOOKS_TIMEOUT:g} s."
    for e in chain:
        if isinstance(e, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                          requests.exceptions.InvalidSchema)):
            return "invalid_url", _short(f"Invalid URL: {e}")
    if isinstance(exc, requests.exceptions.ConnectionError) or "refused" in text.lower():
        return "connection", _short(f"Connection failed: {exc}")
    return "other", _short(f"{type(exc).__name__}: {exc}")


def _chain(exc: BaseException) -> list[BaseException]:
    """Return exc and what it wraps: causes, contexts, urllib3's `reason` and requests' first arg."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        wrapped += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        todo.extend(w for w in wrapped if isinstance(w, BaseException))
    return seen


def _short(message: str) -> str:
    return message if len(message) <= 480 else message[:477] + "..."
