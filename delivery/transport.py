"""The HTTP transport: one POST under a hard deadline on the whole exchange, never redirected.

Whatever the receiver does, post() returns by the deadline: name resolution,
connect and TLS handshake each have their own budget (PHASE_LIMIT, within
the whole), and the whole exchange (request, status line, headers, body) ends
at the endpoint's timeout (its own, 1 to 30 s, or WEBHOOKS_TIMEOUT). Socket
timeouts alone cannot promise that: a receiver that drips a byte at a time
satisfies every read. So a watchdog thread shuts
the socket down at the deadline, the blocked read returns, and the attempt is
recorded as a timeout naming the phase that ran out ("TLS handshake not
finished within 5 s").

The send-time SSRF guard pins the address: the host is resolved once per
send, that address must pass subscriptions.addresses.blocked_reason unless
WEBHOOKS_ALLOW_PRIVATE_NETWORKS is on, and the TCP connection goes to that
very address while the Host header, SNI and the certificate check use the
URL's host name. There is no second lookup for a rebinding answer to race.

The client is Python's http.client over a socket we connect ourselves (so
each phase is ours to bound), with one keep-alive connection per (address,
port, host name, CA bundle) per thread, reused only when it is still idle and
open. Response bodies are read up to WEBHOOKS_RESPONSE_BODY_LIMIT, never
decompressed (we send no Accept-Encoding), so no answer can grow in memory.
"""

import functools
import heapq
import http.client
import ipaddress
import itertools
import logging
import os
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import certifi
import requests
from django.conf import settings

from subscriptions.addresses import blocked_reason, unwrap

USER_AGENT = "GrowerIQ-Webhooks/1.0"
PHASE_LIMIT = 5.0  # seconds for each of: name resolution, connect, TLS handshake
CONNECTIONS_PER_THREAD = 64
MAX_MESSAGE = 480
_DEFAULT_PORTS = {"https": 443, "http": 80}
_local = threading.local()
# Lookups run here so that a resolver that hangs costs its deadline, not the worker thread.
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhooks-dns")
logger = logging.getLogger(__name__)

# What each phase is called when it runs out of time.
RESOLVING = "DNS lookup"
CONNECTING = "TCP connect"
HANDSHAKE = "TLS handshake"
SENDING = "Sending the request"
WAITING = "Status line and headers"
READING = "Response body"
_PHASE_VERBS = {RESOLVING: "not finished", CONNECTING: "not finished", HANDSHAKE: "not finished",
                SENDING: "not finished", WAITING: "not received", READING: "not complete"}


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
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error_kind


class BlockedAddress(Exception):
    """The endpoint's host resolved to an address the SSRF policy refuses (str: the address)."""


class PhaseTimeout(Exception):
    """A phase of the exchange ran out of time (str: the message to record)."""


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # the URL's host name (an IPv6 literal without brackets): for SNI and the certificate
    port: int
    host_header: str
    path: str


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> _Target:
    """Parse url as requests does (IDNA, percent-encoding), so it agrees with the save-time validator."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    parsed = requests.utils.urlparse(prepared.url)
    scheme = (parsed.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS:
        raise requests.exceptions.InvalidSchema(f"No connection adapters were found for {url!r}")
    host = (parsed.hostname or "").strip("[]")
    if not host:
        raise requests.exceptions.InvalidURL(f"No host in {url!r}")
    port = parsed.port or _DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    return _Target(scheme, host, port, host_header, path)


def host_of(url: str) -> str:
    """Return the URL's host name, for logs ("" when the URL cannot be parsed)."""
    try:
        return _target(url).host
    except (ValueError, requests.exceptions.RequestException):
        return ""


# --- the watchdog -------------------------------------------------------------------------

class _Watchdog:
    """One thread that shuts down sockets whose exchange outlived its deadline.

    Waking another thread costs the sender a GIL hand-over (a profile showed 8 to
    11 % of a burst's CPU in notify()), so arm() wakes the thread only for a
    deadline earlier than the one it already sleeps until; finished exchanges
    leave the queue when they end (disarm), and the thread looks at least every
    LOOK_EVERY seconds.
    """

    LOOK_EVERY = 1.0

    def __init__(self):
        self._heap: list = []
        self._cancelled: set[int] = set()
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._thread = None
        self._wakes_at = 0.0  # when the thread will look next (monotonic)

    def arm(self, deadline: float, exchange: "_Exchange") -> int:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhooks-deadline", daemon=True)
                self._thread.start()
            handle = next(self._ids)
            heapq.heappush(self._heap, (deadline, handle, exchange))
            if deadline < self._wakes_at:
                self._cond.notify()
            return handle

    def disarm(self, handle: int) -> None:
        with self._cond:
            self._cancelled.add(handle)
            # Exchanges mostly end in the order they started: drop finished ones from the front now.
            while self._heap and self._heap[0][1] in self._cancelled:
                self._cancelled.discard(heapq.heappop(self._heap)[1])

    def _run(self) -> None:
        while True:
            expired = []
            with self._cond:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, handle, exchange = heapq.heappop(self._heap)
                    if handle in self._cancelled:
                        self._cancelled.discard(handle)
                    else:
                        expired.append(exchange)
                if not expired:
                    self._wakes_at = min(self._heap[0][0] if self._heap else now + self.LOOK_EVERY,
                                         now + self.LOOK_EVERY)
                    self._cond.wait(self._wakes_at - now)
            for exchange in expired:
                exchange.expire()


_watchdog = _Watchdog()


class _Exchange:
    """The state of one POST that the watchdog may cut: its phase and its socket."""

    def __init__(self):
        self.phase = RESOLVING
        self.sock: socket.socket | None = None
        self.expired = False
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self.sock = sock
            if self.expired:
                _shutdown(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            if self.sock is not None:
                _shutdown(self.sock)


def _shutdown(sock: socket.socket) -> None:
    """Shut the socket down under any blocked read or write (the plain socket's, below TLS)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


# --- connections ------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Return a context that verifies certificates and host names against ca_bundle (certifi's when None).

    Built once per bundle: loading one costs about 45 ms of CPU.
    """
    context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_bundle and os.path.isdir(ca_bundle):
        context.load_verify_locations(capath=ca_bundle)
    else:
        context.load_verify_locations(cafile=ca_bundle or certifi.where())
    return context


def _resolve(target: _Target, budget: float) -> str:
    """Resolve the host once within budget; return the address to connect to, or raise BlockedAddress."""
    try:
        address = ipaddress.ip_address(target.host)
    except ValueError:
        future = _resolver.submit(socket.getaddrinfo, target.host, target.port, type=socket.SOCK_STREAM)
        try:
            answers = future.result(timeout=budget)
        except FutureTimeout:
            raise PhaseTimeout(f"{RESOLVING} not finished within {budget:g} s.") from None
        address = ipaddress.ip_address(answers[0][4][0].split("%")[0])
    address = unwrap(address)
    if not settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS and blocked_reason(address):
        logger.warning("Blocked webhook address %s for host %s", address, target.host)
        raise BlockedAddress(str(address))
    return str(address)


def _connections() -> OrderedDict:
    config = (settings.WEBHOOKS_TIMEOUT, settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS, settings.WEBHOOKS_CA_BUNDLE)
    pool = getattr(_local, "connections", None)
    if pool is None or _local.config != config:
        close_connections()
        pool = _local.connections = OrderedDict()
        _local.config = config
    return pool


def close_connections() -> None:
    """Close this thread's keep-alive connections."""
    for conn in (getattr(_local, "connections", None) or {}).values():
        conn.close()
    _local.connections = None


def _idle(conn: http.client.HTTPConnection) -> bool:
    """Return True if a kept connection is still open with nothing unread (safe to send on)."""
    if conn.sock is None:
        return False
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable  # readable means closed by the peer, or stray bytes: not reusable


def _connect(target: _Target, address: str, exchange: _Exchange, deadline: float) -> http.client.HTTPConnection:
    """Return a connection to target at address, new or kept alive, bounded by each phase's budget."""
    key = (target.scheme, address, target.port, target.host, settings.WEBHOOKS_CA_BUNDLE)
    pool = _connections()
    conn = pool.pop(key, None)
    if conn is not None and _idle(conn):
        exchange.attach(conn.sock)
        return conn
    if conn is not None:
        conn.close()
    exchange.phase = CONNECTING
    budget = min(PHASE_LIMIT, max(deadline - time.monotonic(), 0.001))
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    exchange.attach(sock)
    try:
        sock.settimeout(budget)
        try:
            sock.connect((address, target.port))
        except TimeoutError:
            raise PhaseTimeout(f"{CONNECTING} not finished within {budget:g} s.") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target.scheme == "https":
            exchange.phase = HANDSHAKE
            budget = min(PHASE_LIMIT, max(deadline - time.monotonic(), 0.001))
            sock.settimeout(budget)
            try:
                sock = _ssl_context(settings.WEBHOOKS_CA_BUNDLE).wrap_socket(sock, server_hostname=target.host)
            except TimeoutError:
                raise PhaseTimeout(f"{HANDSHAKE} not finished within {budget:g} s.") from None
            exchange.attach(sock)
    except BaseException:
        sock.close()
        raise
    conn = http.client.HTTPConnection(target.host, target.port)
    conn.sock = sock
    return conn


def _keep(target: _Target, address: str, conn: http.client.HTTPConnection) -> None:
    key = (target.scheme, address, target.port, target.host, settings.WEBHOOKS_CA_BUNDLE)
    pool = _connections()
    pool[key] = conn
    if len(pool) > CONNECTIONS_PER_THREAD:
        pool.popitem(last=False)[1].close()


# --- one POST -------------------------------------------------------------------------

def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float | None = None) -> Response:
    """POST body to url and return the Response within `timeout` seconds (None: WEBHOOKS_TIMEOUT); never raises
    for network trouble."""
    timeout = timeout or settings.WEBHOOKS_TIMEOUT
    started = time.monotonic()
    deadline = started + timeout
    exchange = _Exchange()
    handle = _watchdog.arm(deadline, exchange)
    conn = None
    resp = None
    try:
        try:
            target = _target(url)
        except ValueError as exc:  # a port that is not a number, and the like
            raise requests.exceptions.InvalidURL(str(exc)) from None
        address = _resolve(target, min(PHASE_LIMIT, timeout))
        conn = _connect(target, address, exchange, deadline)
        exchange.phase = SENDING
        conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        conn.putrequest("POST", target.path, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": target.host_header, "User-Agent": USER_AGENT,
                            "Content-Type": "application/json", "Content-Length": str(len(body)), **headers}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        exchange.phase = WAITING
        resp = conn.getresponse()
        exchange.phase = READING
        body_bytes, truncated = _read_capped(resp, limit=settings.WEBHOOKS_RESPONSE_BODY_LIMIT)
        if exchange.expired:
            raise PhaseTimeout("")
        status, answer_headers = resp.status, _headers(resp)
        if truncated or resp.will_close or not resp.isclosed():
            conn.close()  # never drain an oversized or endless body
        else:
            _keep(target, address, conn)
        conn = None
        return Response(duration_ms=_ms(started), status_code=status, headers=answer_headers, body=body_bytes,
                        truncated=truncated)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded attempt
        kind, message = classify(exc)
        if exchange.expired or (kind == "timeout" and not isinstance(exc, PhaseTimeout)):
            # Cut by the watchdog, or by the socket timeout set to the same deadline a moment before it.
            kind, message = "timeout", f"{exchange.phase} {_PHASE_VERBS[exchange.phase]} within {timeout:g} s."
        answered = resp is not None and exchange.phase == READING
        return Response(duration_ms=_ms(started), error_kind=kind, error_message=message,
                        status_code=resp.status if answered else None, headers=_headers(resp) if answered else {})
    finally:
        _watchdog.disarm(handle)
        if conn is not None:
            conn.close()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _headers(resp: http.client.HTTPResponse) -> dict[str, str]:
    """Return the answer's headers (repeated names joined with ", ", as HTTP allows)."""
    merged: dict[str, str] = {}
    for name, value in resp.getheaders():
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def _read_capped(resp: http.client.HTTPResponse, *, limit: int) -> tuple[bytes, bool]:
    """Return up to limit bytes of the body and whether more was there."""
    data = resp.read(limit + 1) if not resp.isclosed() else b""
    if len(data) > limit:
        return data[:limit], True
    if not resp.isclosed():
        # Fewer bytes than asked and not at the end: read on until the end or the cap.
        more = resp.read(limit + 1 - len(data))
        data += more
        if len(data) > limit or not resp.isclosed():
            return data[:limit], True
    return data, False


def _printable(text: str) -> str:
    """Return text with control characters and NUL as \\xNN escapes (what we record must store anywhere)."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in text)


def _short(message: str) -> str:
    message = _printable(message)
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def classify(exc: BaseException) -> tuple[str, str]:
    """Return (error kind, short message) for a failed request; never includes secrets."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, PhaseTimeout) and str(e):
            return "timeout", str(e)
        if isinstance(e, BlockedAddress):
            return "blocked", f"The endpoint resolves to a blocked address ({e})."
    for e in chain:
        if isinstance(e, ssl.SSLError | ssl.CertificateError):
            return "tls", _short(f"TLS error: {e}")
    for e in chain:
        if isinstance(e, socket.gaierror):
            return "dns", "DNS lookup failed for the endpoint's host."
    for e in chain:
        if isinstance(e, ConnectionRefusedError | ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return "connection", _short(f"Connection failed: {e}")
        if isinstance(e, http.client.RemoteDisconnected | http.client.IncompleteRead):
            return "connection", _short(f"The endpoint closed the connection: {e!r}")
    for e in chain:
        if isinstance(e, TimeoutError):
            return "timeout", f"No answer within {settings.WEBHOOKS_TIMEOUT:g} s."
    for e in chain:
        if isinstance(e, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                      | requests.exceptions.InvalidSchema | UnicodeError):
            return "invalid_url", _short(f"Invalid URL: {e}")
    for e in chain:
        if isinstance(e, http.client.HTTPException):
            return "other", _short(f"The endpoint did not answer valid HTTP: {type(e).__name__}: {e}")
    for e in chain:
        if isinstance(e, OSError) and "refused" in str(e).lower():
            return "connection", _short(f"Connection failed: {e}")
    return "other", _short(f"{type(exc).__name__}: {exc}")


def _chain(exc: BaseException) -> list[BaseException]:
    """Return exc and what it wraps: causes, contexts and exceptions among its args."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        wrapped = [current.__cause__, current.__context__]
        wrapped += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        todo.extend(w for w in wrapped if isinstance(w, BaseException))
    return seen
