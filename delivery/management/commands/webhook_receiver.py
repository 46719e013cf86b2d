"""`manage.py webhook_receiver --secret whsec_...`: a local HTTPS endpoint that verifies and prints deliveries.

For trying webhooks without the internet. It serves HTTPS on 127.0.0.1 with a
certificate from the development CA (var/dev-ca.pem, made once and reused),
which the app trusts when DEBUG is on. Each POST is verified with
delivery.signing.verify, printed, and answered 204 (401 if the signature fails).
"""

import http.server
import json
import ssl
import threading
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from delivery.signing import SignatureError, verify
from subscriptions.signing_secrets import PREFIX, secret_key_bytes
from webhooks_project.dev_ca import CA_FILE, load_or_create_ca

MAX_BODY_BYTES = 1024 * 1024
RULE = "-" * 72


def _check_secret(secret: str) -> str:
    try:
        ok = secret.startswith(PREFIX) and 24 <= len(secret_key_bytes(secret)) <= 64
    except ValueError:
        ok = False
    if not ok:
        raise CommandError("--secret must be a signing secret as shown once by the app: whsec_ + base64 of its key.")
    return secret


class Command(BaseCommand):
    help = "Serve HTTPS on 127.0.0.1 with a development certificate; verify, print and answer each webhook."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--secret", action="append", required=True, metavar="WHSEC",
                            help="the subscription's signing secret (repeat it while rotating)")
        parser.add_argument("--port", type=int, default=8443, help="port on 127.0.0.1 [8443]; 0 picks a free one")
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on [127.0.0.1]")
        parser.add_argument("--ca-dir", type=Path, default=None,
                            help="where the development CA is kept [WEBHOOKS_DEV_CA_DIR, var/]")

    def handle(self, *args, secret, port, host, ca_dir, **options):
        secrets = [_check_secret(s) for s in secret]
        ca_dir = ca_dir or settings.WEBHOOKS_DEV_CA_DIR
        ca = load_or_create_ca(ca_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
        printer = _Printer(self.stdout)
        try:
            server = http.server.ThreadingHTTPServer((host, port), _handler(secrets, printer))
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        url = f"https://{host}:{server.server_address[1]}/"
        printer.write(
            f"Listening on {url}\n"
            f"TLS certificate issued by the development CA {Path(ca_dir) / CA_FILE}\n"
            "(the app trusts it when DEBUG is on, as under `make run`).\n"
            f"Subscribe this URL with the secret you passed, then watch deliveries here. Ctrl-C stops.\n"
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            printer.write("Stopped.\n")
        finally:
            server.server_close()


class _Printer:
    """Writes whole blocks at once, so concurrent deliveries do not interleave."""

    def __init__(self, stdout):
        self.stdout = stdout
        self.lock = threading.Lock()
        self.seen: set[str] = set()

    def write(self, text: str) -> None:
        with self.lock:
            self.stdout.write(text, ending="")
            self.stdout.flush()

    def first_time(self, webhook_id: str) -> bool:
        with self.lock:
            new = webhook_id not in self.seen
            self.seen.add(webhook_id)
            return new


def _readable_body(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", "replace")


def _handler(secrets: list[str], printer: _Printer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "webhook_receiver"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self._answer(200, b"webhook_receiver: POST your webhooks here.\n")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413, b"Body too large.\n")
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            now = datetime.now(UTC)
            lines = [RULE, f"{self.command} {self.path}  at {now:%Y-%m-%d %H:%M:%S} UTC"]
            for name, value in self.headers.items():
                lines.append(f"  {name.lower()}: {value}{_note(name.lower(), value, now)}")
            try:
                verify(secrets=secrets, headers=headers, body=body)
            except SignatureError as exc:
                lines += [f"REFUSED: {exc}", _readable_body(body), "-> 401 Unauthorized", ""]
                printer.write("\n".join(lines))
                self._answer(401, f"{exc}\n".encode())
                return
            webhook_id = headers["webhook-id"]
            again = "" if printer.first_time(webhook_id) else \
                f" (already received {webhook_id}: a retry or a redelivery; deduplicate on webhook-id)"
            lines += [f"VERIFIED: signature matches{again}", _readable_body(body), "-> 204 No Content", ""]
            printer.write("\n".join(lines))
            self._answer(204, b"")

        def _answer(self, status: int, body: bytes):
            self.send_response(status)
            if body:
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

    return Handler


def _note(name: str, value: str, now: datetime) -> str:
    if name != "webhook-timestamp":
        return ""
    try:
        sent = datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError):
        return "  (not a unix time)"
    age = int((now - sent).total_seconds())
    return f"  ({sent:%Y-%m-%d %H:%M:%S} UTC, {age} s ago)"
