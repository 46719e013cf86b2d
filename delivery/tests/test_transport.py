"""The transport against a real HTTPS receiver on 127.0.0.1 (trustme certificate)."""

import socket
import ssl
import time

import pytest

from delivery import transport
from delivery.tests.receiver import Receiver, drip, hang, huge, redirect

BODY = b'{"id":"evt_1"}'


@pytest.fixture(autouse=True)
def _short_timeout(settings):
    settings.WEBHOOKS_TIMEOUT = 1.5


def test_posts_exact_bytes_with_json_content_type_and_headers(receiver):
    response = transport.post(receiver.url, BODY, {"webhook-id": "evt_1"})
    (request,) = receiver.received
    assert request.body == BODY
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "evt_1"
    assert request.headers["user-agent"] == transport.USER_AGENT
    assert response.status_code == 200 and response.ok
    assert response.body == b'{"ok":true}'


def test_a_receiver_that_hangs_is_cut_off_at_the_timeout(receiver):
    receiver.script.append(hang(10))  # bad input: a receiver that never answers
    started = time.monotonic()
    response = transport.post(receiver.url, BODY, {})
    assert response.status_code is None
    assert response.error_kind == "timeout"
    assert "1.5 s" in response.error_message
    assert time.monotonic() - started < 5


def test_a_redirect_is_a_failure_and_is_not_followed(receiver, tmp_path):
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    with Receiver(other_dir) as other:
        receiver.script.append(redirect(other.url))  # bad input: a 302 to another host
        response = transport.post(receiver.url, BODY, {})
        assert response.status_code == 302
        assert not response.ok
        assert other.received == []  # never followed
    assert len(receiver.received) == 1


def test_a_slow_drip_body_is_cut_off_at_the_total_timeout(receiver):
    receiver.script.append(drip(total_seconds=10, step=0.2))  # bad input: one byte every 0.2 s
    started = time.monotonic()
    response = transport.post(receiver.url, BODY, {})
    assert response.error_kind == "timeout"
    assert "not complete" in response.error_message
    assert time.monotonic() - started < 4


def test_a_huge_body_is_read_only_up_to_the_cap(receiver, settings):
    settings.WEBHOOKS_RESPONSE_BODY_LIMIT = 64 * 1024
    receiver.script.append(huge(megabytes=200))  # bad input: a 200 MB answer
    response = transport.post(receiver.url, BODY, {})
    assert response.status_code == 200
    assert response.truncated
    assert len(response.body) == 64 * 1024


def test_connection_refused_is_recorded_by_kind():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    response = transport.post(f"https://127.0.0.1:{port}/hooks", BODY, {})
    assert response.error_kind == "connection"
    assert response.status_code is None


def test_an_untrusted_certificate_is_a_tls_error(receiver, settings, tmp_path):
    settings.WEBHOOKS_CA_BUNDLE = None  # certifi's CAs do not know the receiver's test CA
    response = transport.post(receiver.url, BODY, {})
    assert response.error_kind == "tls"
    assert receiver.received == []


def test_an_unresolvable_host_is_a_dns_error():
    response = transport.post("https://no-such-host.invalid/hooks", BODY, {})  # .invalid never resolves
    assert response.error_kind == "dns"


def test_sequential_posts_to_one_endpoint_reuse_one_tls_connection(receiver):
    for _ in range(5):
        assert transport.post(receiver.url, BODY, {}).ok
    assert len(receiver.received) == 5
    assert len({r.client_port for r in receiver.received}) == 1  # one connection, kept alive


def test_a_truncated_body_drops_the_connection_and_the_next_post_opens_a_new_one(receiver, settings):
    settings.WEBHOOKS_RESPONSE_BODY_LIMIT = 64 * 1024
    receiver.script += [200, huge(megabytes=50), 200]  # bad input: a 50 MB answer between two good ones

    first = transport.post(receiver.url, BODY, {})
    flooded = transport.post(receiver.url, BODY, {})
    started = time.monotonic()
    after = transport.post(receiver.url, BODY, {})

    assert first.ok and not first.truncated
    assert flooded.truncated and len(flooded.body) == 64 * 1024
    assert after.ok and after.body == b'{"ok":true}' and not after.truncated
    assert time.monotonic() - started < 1  # the 50 MB were not drained first
    ports = [r.client_port for r in receiver.received]
    assert ports[0] == ports[1] != ports[2]  # kept alive for the flood, dropped after it


def test_the_ssl_context_is_built_once_for_many_posts_to_several_endpoints(receiver, tmp_path, monkeypatch):
    loads = []
    real = ssl.SSLContext.load_verify_locations

    def counting(context, cafile=None, *args, **kwargs):
        loads.append(cafile)
        return real(context, cafile, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    with Receiver(other_dir, ca=receiver.ca) as other:  # another endpoint under the same CA
        urls = [receiver.url, other.url, f"https://localhost:{receiver.port}/hooks"]
        for i in range(12):
            assert transport.post(urls[i % 3], BODY, {}).ok
    assert len(receiver.received) == 8 and len(other.received) == 4
    assert loads.count(str(receiver.ca_path)) == 1
