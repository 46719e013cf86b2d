"""Receivers that attack the sender: a gigabyte body, an endless chunked body, a
slow drip, and bad TLS (untrusted, expired, wrong host name). Each attempt ends
by the timeout, is recorded in the delivery log, and holds bounded memory.

Memory is measured twice: tracemalloc's peak of Python allocations during the
attempt, and the growth of the process's maximum resident set (which also sees
buffers held in C, such as OpenSSL's). Run with -s to print the figures.
"""

import datetime
import http.server
import resource
import ssl
import threading
import tracemalloc
from contextlib import contextmanager

import pytest
import trustme

from conftest import make_subscription, send_now
from delivery.models import Attempt, Delivery
from delivery.tests.receiver import answer, drip
from subscriptions.activity import record_activity

pytestmark = pytest.mark.django_db

GIB = 1024**3
# What one attempt may add: the response cap (64 KiB) and read buffers, with room
# for the database and TLS work around it; three orders of magnitude below a gigabyte.
PYTHON_PEAK_LIMIT = 4 * 1024**2
RSS_GROWTH_LIMIT = 64 * 1024**2


@pytest.fixture(autouse=True)
def _short_timeout(settings):
    settings.WEBHOOKS_TIMEOUT = 2.0


def gigabyte(status: int):
    """Answer status with a declared and streamed 1 GiB body."""

    def act(handler):
        handler.send_response(status)
        handler.send_header("Content-Length", str(GIB))
        handler.end_headers()
        chunk = b"y" * 65536
        try:
            for _ in range(GIB // len(chunk)):
                handler.wfile.write(chunk)
        except OSError:
            pass

    return act


def endless_chunked(status: int):
    """Answer status with a chunked body that never ends."""

    def act(handler):
        handler.send_response(status)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"z" * 65536
        frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        try:
            while True:
                handler.wfile.write(frame)
        except OSError:
            pass

    return act


def attempt_once(org, url) -> tuple[Attempt, Delivery, int, int]:
    """Record one event for a subscription to url, send one attempt; return it with the memory it took."""
    make_subscription(org, url=url)
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-1"})
    delivery = Delivery.objects.get(event=event)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    try:
        attempt = send_now(delivery.id)
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    delivery.refresh_from_db()
    print(f"\n{url}: python peak {python_peak / 1024:.0f} KiB, max RSS growth {rss_growth / 1024:.0f} KiB")
    return attempt, delivery, python_peak, rss_growth


def assert_bounded(python_peak: int, rss_growth: int) -> None:
    assert python_peak < PYTHON_PEAK_LIMIT
    assert rss_growth < RSS_GROWTH_LIMIT


def assert_failed_and_retrying(attempt: Attempt, delivery: Delivery) -> None:
    assert Attempt.objects.filter(delivery=delivery).count() == 1
    assert delivery.state == Delivery.State.PENDING and delivery.next_attempt_at is not None
    assert delivery.last_error


# --- bodies -----------------------------------------------------------------

def test_a_gigabyte_error_body_is_a_recorded_failure_read_only_to_the_cap(org, receiver, settings):
    receiver.script.append(gigabyte(500))  # bad input: 1 GiB answer to a webhook

    attempt, delivery, peak, rss = attempt_once(org, receiver.url)

    assert attempt.status_code == 500 and attempt.response_truncated
    assert len(attempt.response_body) == settings.WEBHOOKS_RESPONSE_BODY_LIMIT
    assert_failed_and_retrying(attempt, delivery)
    assert_bounded(peak, rss)


def test_an_endless_chunked_error_body_is_a_recorded_failure_read_only_to_the_cap(org, receiver, settings):
    receiver.script.append(endless_chunked(503))  # bad input: a chunked body that never ends

    attempt, delivery, peak, rss = attempt_once(org, receiver.url)

    assert attempt.status_code == 503 and attempt.response_truncated
    assert len(attempt.response_body) == settings.WEBHOOKS_RESPONSE_BODY_LIMIT
    assert_failed_and_retrying(attempt, delivery)
    assert_bounded(peak, rss)


@pytest.mark.parametrize("answer_with", [gigabyte, endless_chunked], ids=["gigabyte", "endless-chunked"])
def test_a_2xx_with_a_hostile_body_counts_as_delivered_and_is_recorded_truncated(org, receiver, answer_with):
    # Bad input: the receiver accepts (2xx) but then floods. The status decides the
    # outcome, as with Svix and Stripe; the flood is cut at the cap and recorded.
    receiver.script.append(answer_with(200))

    attempt, delivery, peak, rss = attempt_once(org, receiver.url)

    assert attempt.status_code == 200 and attempt.response_truncated and not attempt.error_kind
    assert delivery.state == Delivery.State.SUCCEEDED
    assert_bounded(peak, rss)


def test_a_slow_drip_is_a_recorded_timeout(org, receiver):
    # Bad input: headers at once, then one byte every 0.2 s for a minute.
    receiver.script.append(drip(60, step=0.2))

    attempt, delivery, peak, rss = attempt_once(org, receiver.url)

    assert attempt.error_kind == Attempt.ErrorKind.TIMEOUT
    assert attempt.error_message == "Response body not complete within 2 s."
    # It gave up at its own deadline, long before the drip would have ended.
    assert attempt.duration_ms < 30_000
    assert_failed_and_retrying(attempt, delivery)
    assert_bounded(peak, rss)


# --- TLS ----------------------------------------------------------------------

@contextmanager
def tls_receiver(leaf: trustme.LeafCert):
    """An HTTPS server on 127.0.0.1 presenting leaf; yields (url, list of requests it got)."""
    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            got.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            answer(self, 200)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/hooks", got
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def trusted_ca(settings, tmp_path):
    """A CA the sender trusts (as REQUESTS_CA_BUNDLE would say)."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "trusted-ca.pem"))
    settings.WEBHOOKS_CA_BUNDLE = str(tmp_path / "trusted-ca.pem")
    return ca


def _yesterday(days: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)


@pytest.mark.parametrize(
    ("bad_input", "make_leaf", "reason"),
    [
        ("certificate from an untrusted CA", lambda ca: trustme.CA().issue_cert("127.0.0.1"),
         "certificate verify failed"),
        ("expired certificate", lambda ca: ca.issue_cert("127.0.0.1", not_before=_yesterday(30),
                                                         not_after=_yesterday(1)), "certificate has expired"),
        ("certificate for another host name", lambda ca: ca.issue_cert("hooks.example.com"),
         "IP address mismatch"),
    ],
)
def test_bad_tls_is_a_recorded_tls_failure_and_nothing_is_sent(org, trusted_ca, bad_input, make_leaf, reason):
    with tls_receiver(make_leaf(trusted_ca)) as (url, got):
        attempt, delivery, peak, rss = attempt_once(org, url)

    assert attempt.error_kind == Attempt.ErrorKind.TLS
    assert reason in attempt.error_message
    assert got == []  # the signed body never left the sender
    assert_failed_and_retrying(attempt, delivery)
    assert_bounded(peak, rss)


def test_a_valid_certificate_from_the_trusted_ca_is_delivered(org, trusted_ca):
    """Control for the TLS failures: the same server with a good certificate receives the event."""
    with tls_receiver(trusted_ca.issue_cert("127.0.0.1")) as (url, got):
        attempt, delivery, _, _ = attempt_once(org, url)

    assert attempt.status_code == 200
    assert delivery.state == Delivery.State.SUCCEEDED
    assert len(got) == 1
