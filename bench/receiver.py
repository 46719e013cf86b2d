"""A fast HTTPS receiver for the benchmarks, in its own process.

One asyncio event loop serves HTTP/1.1 keep-alive over TLS (a trustme
certificate) on 127.0.0.1, verifies every request's signature as it arrives,
and logs (message id, path, arrival time, verified). The bench process drives
it over a pipe: which secret belongs to which path, which paths hang, and
"take what arrived".

Two signature schemes are understood: Standard Webhooks (ours, checked with
delivery.signing.verify) on every path, and django-webhook's own
(`Django-Webhook-Signature-v1`, hex HMAC of "{timestamp}:{body}") on paths
under /peer/, so the peer is held to the same "every event arrived verified".
"""

import asyncio
import hashlib
import hmac
import json
import multiprocessing
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import trustme

OK_BODY = b'{"ok":true}'
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n" + OK_BODY
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"


@dataclass(frozen=True)
class Arrival:
    msg_id: str
    path: str
    at: float  # time.time() when the whole request had arrived
    verified: bool


def _verify_ours(secret: str, headers: dict, body: bytes) -> str | None:
    from delivery import signing

    try:
        signing.verify(secrets=secret, headers=headers, body=body)
    except signing.SignatureError:
        return None
    return headers.get("webhook-id")


def _verify_peer(secret: str, headers: dict, body: bytes) -> str | None:
    timestamp = headers.get("django-webhook-request-timestamp", "")
    offered = headers.get("django-webhook-signature-v1", "").split(",")
    expected = hmac.new(secret.encode(), f"{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in offered):
        return None
    return f"peer:{json.loads(body)['object']['id']}"


class _Server:
    def __init__(self):
        self.secrets: dict[str, str] = {}
        self.hanging: set[str] = set()
        self.held: list[asyncio.Transport] = []
        self.arrivals: list[tuple] = []

    def handle(self, path: str, headers: dict, body: bytes, transport) -> bool:
        """Log one request and answer it (or hold it); return False to close the connection."""
        at = time.time()
        secret = self.secrets.get(path)
        msg_id = None
        if secret is not None:
            verify = _verify_peer if path.startswith("/peer/") else _verify_ours
            msg_id = verify(secret, headers, body)
        verified = msg_id is not None
        self.arrivals.append((msg_id or headers.get("webhook-id") or "?", path, at, verified))
        if path in self.hanging:
            self.held.append(transport)  # never answered: the sender's timeout ends it
            return True
        transport.write(OK if verified else BAD)
        return headers.get("connection", "").lower() != "close"

    def release(self) -> None:
        for transport in self.held:
            if not transport.is_closing():
                transport.write(OK)
        self.held.clear()


class _Protocol(asyncio.Protocol):
    def __init__(self, server: _Server):
        self.server = server
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", 0))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            path = head[0].split(" ")[1] if " " in head[0] else "/"
            if not self.server.handle(path, headers, body, self.transport):
                self.transport.close()
                return


def _serve(cert_path: str, key_path: str, conn, port_out) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = _Server()
    loop = asyncio.new_event_loop()
    srv = loop.run_until_complete(
        loop.create_server(lambda: _Protocol(server), "127.0.0.1", 0, ssl=context, backlog=1024)
    )
    port_out.send(srv.sockets[0].getsockname()[1])

    def on_command():
        try:
            command, arg = conn.recv()
        except EOFError:  # the bench process is gone (killed): stop, do not spin on a closed pipe
            loop.stop()
            return
        if command == "secrets":
            server.secrets.update(arg)
        elif command == "hang":
            server.hanging.add(arg)
        elif command == "release":
            server.hanging.discard(arg)
            server.release()
        elif command == "count":
            conn.send(len(server.arrivals))
        elif command == "take":
            taken, server.arrivals = server.arrivals, []
            conn.send(taken)
        elif command == "stop":
            loop.stop()

    loop.add_reader(conn.fileno(), on_command)
    loop.run_forever()


class FastReceiver:
    """`with FastReceiver(workdir) as r:` r.url(path), r.ca_path, r.secret(path, s), r.take()."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.ca = trustme.CA()
        self.ca_path = self.workdir / "receiver-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.cert_path = self.workdir / "receiver-cert.pem"
        self.key_path = self.workdir / "receiver-key.pem"
        cert.private_key_pem.write_to_path(str(self.key_path))
        with open(self.cert_path, "wb") as f:
            for blob in cert.cert_chain_pems:
                f.write(blob.bytes())

    def __enter__(self):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        port_in, port_out = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_serve, args=(str(self.cert_path), str(self.key_path), child, port_out), daemon=True
        )
        self.process.start()
        self.port = port_in.recv()
        return self

    def __exit__(self, *exc):
        try:
            self._conn.send(("stop", None))
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def secrets(self, mapping: dict[str, str]) -> None:
        """Verify requests to each path with its secret (peer paths: django-webhook's token)."""
        self._conn.send(("secrets", mapping))

    def hang(self, path: str) -> None:
        self._conn.send(("hang", path))

    def release(self, path: str) -> None:
        """Stop hanging on path and answer every request held so far."""
        self._conn.send(("release", path))

    def count(self) -> int:
        self._conn.send(("count", None))
        return self._conn.recv()

    def take(self) -> list[Arrival]:
        """Return every arrival since the last take, and forget them."""
        self._conn.send(("take", None))
        return [Arrival(*row) for row in self._conn.recv()]

    def collect(self, want: set[str], timeout: float, path_prefix: str = "") -> dict[str, Arrival]:
        """Return {msg id: first verified arrival} once every id in want has arrived, or at timeout."""
        got: dict[str, Arrival] = {}
        self.unverified: list[Arrival] = []  # of this collect, for the caller to report
        deadline = time.monotonic() + timeout
        while True:
            for a in self.take():
                if not a.path.startswith(path_prefix):
                    continue
                if not a.verified:
                    self.unverified.append(a)
                elif a.msg_id not in got:
                    got[a.msg_id] = a
            if want <= got.keys() or time.monotonic() > deadline:
                return got
            time.sleep(0.05)
