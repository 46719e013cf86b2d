"""A hostile HTTPS receiver for tests: a catalogue of bad answers, one per path, on 127.0.0.1.

`with HostileReceiver(ca_dir) as h:` then POST to `h.url_for("slow-headers")`;
`h.requests_to("slow-headers")` counts what arrived there. It writes raw bytes
on the TLS socket, so it can answer what no HTTP server library would: a status
line a byte at a time, headers that never end, NUL bytes, garbage, a reset in
the middle of a body. A TLS handshake that stalls cannot be chosen by path (no
path is sent before it), so it has its own port: `h.url_for("tls-stall")`.

Every loop is bounded (DRIP_LIMIT seconds, MAX_WRITE bytes), the server stops
by itself after `lifetime` seconds, and it listens on 127.0.0.1 only.
`raw_answers()` is a hypothesis strategy of whole answers, served at
`h.url_for("raw")` after `h.raw_answer = ...`.
"""

import gzip
import socket
import ssl
import struct
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from hypothesis import strategies as st

DRIP_STEP = 0.25  # seconds between the bytes of a drip
DRIP_LIMIT = 20.0  # no behaviour writes or waits longer than this
MAX_WRITE = 8 * 1024 * 1024  # nor writes more than this
GZIP_INFLATED = 256 * 1024 * 1024  # what the gzip answer inflates to (zeros)
NUL_BODY = b'{"ok":true,"note":"nul \x00 here, then bytes that are not UTF-8: \xff\xfe\xc3("}'
MANY_HEADERS = 5000


class _Stopped(Exception):
    pass


@dataclass
class HostileReceiver:
    """Run with `with HostileReceiver(ca_dir) as h:`; h.ca_path is the CA the sender must trust."""

    ca_dir: Path
    lifetime: float = 300.0
    ca: trustme.CA = field(default_factory=trustme.CA)
    raw_answer: bytes = b"HTTP/1.1 204 No Content\r\n\r\n"

    def __post_init__(self):
        self.ca_path = self.ca_dir / "hostile-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self._received: Counter = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self):
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._context)
        self._main = _listener()
        self._stall = _listener()
        self._deadline = time.monotonic() + self.lifetime
        for listener, serve in ((self._main, self._serve_http), (self._stall, self._hold)):
            self._start(self._accept, listener, serve)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        """Close the listeners and every open connection; return once the threads have ended."""
        self._stop.set()
        for sock in (self._main, self._stall, *self._connections):
            _close(sock)
        for thread in self._threads:
            thread.join(timeout=5)

    def url_for(self, behaviour: str) -> str:
        """Return the URL that answers with this behaviour."""
        if behaviour not in BEHAVIOURS and behaviour not in ("tls-stall", "raw"):
            raise KeyError(f"no hostile behaviour {behaviour!r}")
        if behaviour == "gzip-bomb":
            _gzip_zeros()  # made now, so that its cost falls outside whatever the test measures
        port = (self._stall if behaviour == "tls-stall" else self._main).getsockname()[1]
        return f"https://127.0.0.1:{port}/{behaviour}"

    def requests_to(self, behaviour: str) -> int:
        """Return how many requests (or, for tls-stall, connections) reached this behaviour."""
        with self._lock:
            return self._received[behaviour]

    # --- serving ------------------------------------------------------------------------

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept(self, listener: socket.socket, serve) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break  # closed by stop()
            self._connections.append(conn)
            self._start(self._serve_one, conn, serve)
        if not self._stop.is_set():
            self.stop_later()

    def stop_later(self) -> None:
        threading.Thread(target=self.stop, daemon=True).start()

    def _serve_one(self, conn: socket.socket, serve) -> None:
        try:
            serve(conn)
        except (OSError, ssl.SSLError, _Stopped):
            pass  # the sender hung up, or we are stopping: both are expected here
        finally:
            _close(conn)

    def _hold(self, conn: socket.socket) -> None:
        """Accept TCP, then never answer the TLS handshake."""
        with self._lock:
            self._received["tls-stall"] += 1
        self._wait(DRIP_LIMIT)

    def _serve_http(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        tls = self._context.wrap_socket(conn, server_side=True)
        self._connections.append(tls)
        try:
            path = _read_request(tls)
            behaviour = path.lstrip("/").split("?")[0]
            with self._lock:
                self._received[behaviour] += 1
            if behaviour == "raw":
                tls.sendall(self.raw_answer)
            else:
                BEHAVIOURS.get(behaviour, _not_found)(self, tls)
        finally:
            _close(tls)  # one request per connection; after reset-mid-body this close is the reset

    # --- helpers for behaviours -----------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        if self._stop.wait(min(seconds, max(0.0, self._deadline - time.monotonic()))):
            raise _Stopped

    def _drip(self, sock, chunks, *, step: float = DRIP_STEP) -> None:
        """Write each chunk step seconds apart, for at most DRIP_LIMIT seconds and MAX_WRITE bytes."""
        end = time.monotonic() + DRIP_LIMIT
        written = 0
        for chunk in chunks:
            if time.monotonic() >= end or written >= MAX_WRITE:
                return
            sock.sendall(chunk)
            written += len(chunk)
            if step:
                self._wait(step)


# --- the catalogue ------------------------------------------------------------------------

def _bytes_of(*lines: bytes):
    for line in lines:
        for i in range(len(line)):
            yield line[i:i + 1]


def _endless_header_lines(prefix: bytes = b"X-Endless"):
    n = 0
    while True:
        yield b"%s-%d: v\r\n" % (prefix, n)
        n += 1


def slow_status(h: HostileReceiver, sock) -> None:
    """The status line and headers, a byte every DRIP_STEP seconds."""
    h._drip(sock, _bytes_of(b"HTTP/1.1 200 OK\r\n", *(b"X-Drip-%d: v\r\n" % n for n in range(1000))))


def slow_headers(h: HostileReceiver, sock) -> None:
    """The status line at once, then headers a byte every DRIP_STEP seconds."""
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    h._drip(sock, _bytes_of(*(b"X-Drip-%d: v\r\n" % n for n in range(1000))))


def endless_headers(h: HostileReceiver, sock) -> None:
    """The status line, then a new header line every 50 ms, with no end of headers."""
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    h._drip(sock, _endless_header_lines(), step=0.05)


def continue_then_nothing(h: HostileReceiver, sock) -> None:
    """An interim 100 Continue, then silence."""
    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    h._wait(DRIP_LIMIT)


def reset_mid_body(h: HostileReceiver, sock) -> None:
    """Headers promising 10,000 bytes, 1,000 of them, then a TCP reset."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n" + b"r" * 1000)
    h._wait(0.2)  # let the sender read what came before the reset
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST


def garbage(h: HostileReceiver, sock) -> None:
    """Bytes that are not HTTP at all, then the connection closed."""
    sock.sendall(b"\x00\xff\xfeSSH-2.0-OpenSSH_9.6\r\n\x16\x03\x01 not http \x00\r\n\r\n")


def nul_body(h: HostileReceiver, sock) -> None:
    """A 200 whose body has NUL and bytes that are not UTF-8."""
    _answer(sock, 200, NUL_BODY, b"Content-Type: application/json\r\n")


def nul_headers(h: HostileReceiver, sock) -> None:
    """A 200 whose header values have NUL and bytes that are not UTF-8, then a header name that is not a token."""
    body = b'{"ok":true}'
    # The odd name comes last: http.client's parser stops at it and reads no header after it.
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n"
                 b"X-Nul: a\x00b\r\nX-Latin: caf\xe9\r\nX-Bytes: \xff\xfe\x80\r\nX-Long: %s\r\n"
                 b"X-\xff\x00Name: v\r\n\r\n%s" % (len(body), b"L" * 20000, body))


def many_headers(h: HostileReceiver, sock) -> None:
    """A 200 with MANY_HEADERS headers."""
    _answer(sock, 200, b'{"ok":true}', b"".join(b"X-H%d: v\r\n" % n for n in range(MANY_HEADERS)))


def gzip_bomb(h: HostileReceiver, sock) -> None:
    """A 200 with a gzip body of a few hundred KB that inflates to GZIP_INFLATED zero bytes."""
    _answer(sock, 200, _gzip_zeros(), b"Content-Type: application/json\r\nContent-Encoding: gzip\r\n")


_gzip_cache: list[bytes] = []


def _gzip_zeros() -> bytes:
    """Return the gzip answer's body, made once per process a megabyte at a time (about 1 s of CPU)."""
    if not _gzip_cache:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
        megabyte = bytes(1024 * 1024)
        parts = [compressor.compress(megabyte) for _ in range(GZIP_INFLATED // len(megabyte))]
        _gzip_cache.append(b"".join(parts) + compressor.flush())
    return _gzip_cache[0]


def _not_found(h: HostileReceiver, sock) -> None:
    _answer(sock, 404, b"no such behaviour")


def _answer(sock, status: int, body: bytes, headers: bytes = b"") -> None:
    sock.sendall(b"HTTP/1.1 %d X\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (status, headers, len(body), body))


BEHAVIOURS = {
    "slow-status": slow_status,
    "slow-headers": slow_headers,
    "endless-headers": endless_headers,
    "continue-then-nothing": continue_then_nothing,
    "reset-mid-body": reset_mid_body,
    "garbage": garbage,
    "nul-body": nul_body,
    "nul-headers": nul_headers,
    "many-headers": many_headers,
    "gzip-bomb": gzip_bomb,
}


# --- plumbing -------------------------------------------------------------------------------

def _listener() -> socket.socket:
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)  # so the accept loop sees stop() and the lifetime
    return sock


def _read_request(sock) -> str:
    """Read one request (head up to 64 KiB, body up to 1 MiB) and return its path."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        if not chunk or len(head) > 65536:
            raise OSError("no complete request")
        head += chunk
    head, _, body = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = min(int(value), 1024 * 1024)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


# --- answers for hypothesis ------------------------------------------------------------------

_odd_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@st.composite
def raw_answers(draw) -> bytes:
    """Return a whole answer: an odd or good status line, odd headers, a body, a length that may lie."""
    status = draw(st.one_of(
        st.integers(100, 599).map(lambda code: b"HTTP/1.1 %d Odd\r\n" % code),
        st.sampled_from([b"HTTP/1.0 200\r\n", b"HTTP/9.9 200 OK\r\n", b"\x00\xff\r\n", b"", b"ICY 200 OK\r\n"]),
        _odd_bytes.map(lambda b: b + b"\r\n"),
    ))
    headers = draw(st.lists(st.tuples(_odd_bytes.filter(lambda b: b":" not in b and b), _odd_bytes), max_size=30))
    body = draw(st.one_of(st.binary(max_size=3000), st.sampled_from([NUL_BODY, bytes(2000), b'{"a":' * 500])))
    encoding = draw(st.sampled_from([None, "gzip", "lying-gzip"]))
    if encoding == "gzip":
        body = gzip.compress(body, mtime=0)
    length = draw(st.sampled_from(["exact", "short", "long", "none"]))
    lines = [b"%s: %s\r\n" % pair for pair in headers]
    if encoding:
        lines.append(b"Content-Encoding: gzip\r\n")
    if length != "none":
        lines.append(b"Content-Length: %d\r\n" % (len(body) + {"exact": 0, "short": -1, "long": 100}[length]))
    # Always closed after it: a length that lies ends at the close, not at a timeout.
    return status + b"".join(lines) + b"Connection: close\r\n\r\n" + body


RETRY_AFTERS = st.one_of(
    st.integers(0, 10**30).map(str),  # delay-seconds, from none to far past any cap
    st.sampled_from(["inf", "-inf", "NaN", "1e12", "1e308", "9e9", "-5", "600.5", "0x10", " 30 ", "", "soon",
                     "Fri, 31 Dec 9999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT",
                     "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Mon, 32 Foo 2026 25:61:61 GMT",
                     "\u20ac", "30\x0030"]),
    st.datetimes().map(lambda moment: moment.strftime("%a, %d %b %Y %H:%M:%S GMT")),
    _odd_bytes.map(lambda b: b.decode("latin-1")),
)


@st.composite
def answers_with_retry_after(draw) -> bytes:
    """Return a whole answer with a status a sender must act on and a Retry-After in any form, or none."""
    status = draw(st.sampled_from([200, 204, 301, 400, 410, 429, 429, 500, 503, 503, 599]))
    retry_after = draw(st.one_of(st.none(), RETRY_AFTERS))
    header = b"" if retry_after is None else b"Retry-After: " + retry_after.encode("latin-1", "replace") + b"\r\n"
    return (b"HTTP/1.1 %d Answer\r\n" % status + header + b"Content-Length: 2\r\nConnection: close\r\n\r\nok")
