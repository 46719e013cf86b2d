"""A real HTTPS receiver on 127.0.0.1 with a trustme certificate, for tests.

It records every request (headers and exact body bytes) and answers with a
scripted sequence of behaviours: a status code, a hang, a redirect, a drip,
a huge body.
"""

import http.server
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import trustme


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    client_port: int = 0  # tells the sender's connections apart

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """Run with `with Receiver(ca_dir) as r:`; r.url is the endpoint, r.ca_path the CA to trust."""

    ca_dir: Path
    ca: trustme.CA = field(default_factory=trustme.CA)
    received: list[Received] = field(default_factory=list)
    # Each entry: an int status, or a callable(handler) that writes the answer itself.
    script: list = field(default_factory=list)
    default: object = 200

    def __post_init__(self):
        self.ca_path = self.ca_dir / "receiver-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.stopping = threading.Event()  # set when the receiver stops: a hanging answer ends (hang)

    def __enter__(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time(),
                                 self.client_address[1])
                    )
                    action = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver._arrived.notify_all()
                if callable(action):
                    action(self)
                else:
                    answer(self, action)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.stopping = self.stopping
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Return the requests once at least count have arrived; raise AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(self.received)} in {timeout} s")
                self._arrived.wait(left)
            return list(self.received)


def answer(handler, status: int, body: bytes = b'{"ok":true}', headers: dict | None = None) -> None:
    handler.send_response(status)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def hang(seconds: float):
    """Answer 200 after `seconds`; if the receiver stops first, close the connection unanswered then (as a
    server going away does), so that no sender is left waiting on a receiver that is gone."""
    def act(handler):
        if handler.server.stopping.wait(seconds):
            handler.close_connection = True
            return
        try:
            answer(handler, 200)
        except (OSError, BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    return act


def redirect(location: str):
    def act(handler):
        answer(handler, 302, b"", {"Location": location})

    return act


def drip(total_seconds: float, step: float = 0.5):
    """Send headers at once, then one byte every `step` seconds."""

    def act(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        end = time.monotonic() + total_seconds
        try:
            while time.monotonic() < end:
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(step)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass

    return act


def huge(megabytes: int):
    """Answer 200 with a body of many megabytes, streamed."""

    def act(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(megabytes * 1024 * 1024))
        handler.end_headers()
        chunk = b"y" * 65536
        try:
            for _ in range(megabytes * 16):
                handler.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass

    return act
