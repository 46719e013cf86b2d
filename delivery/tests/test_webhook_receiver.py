"""`manage.py webhook_receiver`: a local HTTPS receiver that the app trusts in development.

The receiver runs as its own process, as a developer runs it; a real Celery
worker started with DEBUG on (and no REQUESTS_CA_BUNDLE) delivers to it,
trusting its development CA through settings alone.
"""

import re
import subprocess
import sys
import threading
import time

import certifi
import pytest
import requests

from conftest import ROOT, make_subscription, wait_until
from delivery.models import Attempt
from delivery.signing import signed_headers
from subscriptions.activity import record_activity
from subscriptions.services import subscription_update
from subscriptions.signing_secrets import generate_secret
from webhooks_project.dev_ca import dev_ca_bundle

pytestmark = [pytest.mark.e2e]


class ReceiverProcess:
    """`python manage.py webhook_receiver ...` as a child process, its output collected line by line."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "webhook_receiver", *args], cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str) -> str:
        """Return the output once it contains text (fail the test after a while)."""
        return wait_until(lambda: text in self.output and self.output, message=f"{text!r} in:\n{self.output}")

    def url(self) -> str:
        return re.search(r"Listening on (https://127\.0\.0\.1:\d+/)", self.wait_for("Listening on")).group(1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture
def start_receiver():
    started = []

    def start(*args):
        process = ReceiverProcess(*args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.mark.django_db(transaction=True)
def test_a_real_delivery_is_verified_printed_and_acknowledged(require_services, org, tmp_path, start_receiver,
                                                              celery_process):
    ca_dir = tmp_path / "dev-ca"
    # As in the README: create the webhook, start the receiver with its secret, point the webhook at it.
    subscription, secret = make_subscription(org, activity_types=["lot.created"])
    receiver = start_receiver("--secret", secret, "--port", "0", "--ca-dir", str(ca_dir))
    subscription_update(subscription=subscription, url=receiver.url() + "hooks", activity_types=["lot.created"])
    # Development settings alone make the worker trust the receiver's CA.
    celery_process("worker", "--pool", "threads", "--without-mingle", "--without-gossip", "--without-heartbeat",
                   env={"DEBUG": "true", "REQUESTS_CA_BUNDLE": "", "WEBHOOKS_DEV_CA_DIR": str(ca_dir)})

    event = record_activity(organisation=org, activity_type="lot.created",
                            data={"lot_id": "LOT-7", "weight_grams": 5000.0})

    output = receiver.wait_for("-> 204 No Content")
    assert "POST /hooks  at " in output
    assert f"  webhook-id: {event.webhook_id}\n" in output
    assert re.search(r"  webhook-timestamp: \d+  \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, -?\d+ s ago\)\n", output)
    assert "  webhook-signature: v1," in output
    assert "  content-type: application/json\n" in output
    assert "VERIFIED: signature matches\n" in output
    assert '  "type": "lot.created",\n' in output and '    "lot_id": "LOT-7",\n' in output
    attempt = wait_until(lambda: Attempt.objects.filter(delivery__subscription=subscription).first(),
                         message="the attempt")
    assert (attempt.status_code, attempt.error_kind) == (204, "")


def test_a_bad_signature_is_refused_with_401(tmp_path, start_receiver):
    """Bad input: a delivery signed with another secret, then one whose body was altered after signing."""
    secret = generate_secret()
    receiver = start_receiver("--secret", secret, "--port", "0", "--ca-dir", str(tmp_path))
    url = receiver.url()
    bundle = dev_ca_bundle(tmp_path)
    body = b'{"id":"evt_1","type":"lot.created","data":{}}'
    forged = signed_headers(secret=generate_secret(), msg_id="evt_1", timestamp=int(time.time()), body=body)
    answer = requests.post(url, data=body, headers=forged, verify=bundle, timeout=10)
    assert (answer.status_code, answer.text) == (401, "No matching signature.\n")
    signed = signed_headers(secret=secret, msg_id="evt_2", timestamp=int(time.time()), body=body)
    answer = requests.post(url, data=body + b" ", headers=signed, verify=bundle, timeout=10)
    assert answer.status_code == 401
    assert receiver.wait_for("-> 401 Unauthorized").count("REFUSED: No matching signature.") == 2
    answer = requests.post(url, data=body, headers=signed, verify=bundle, timeout=10)
    assert answer.status_code == 204


def test_a_replayed_old_delivery_is_refused(tmp_path, start_receiver):
    """Bad input: a correctly signed delivery whose timestamp is ten minutes old."""
    secret = generate_secret()
    receiver = start_receiver("--secret", secret, "--port", "0", "--ca-dir", str(tmp_path))
    body = b'{"id":"evt_1"}'
    old = signed_headers(secret=secret, msg_id="evt_1", timestamp=int(time.time()) - 600, body=body)
    answer = requests.post(receiver.url(), data=body, headers=old, verify=dev_ca_bundle(tmp_path), timeout=10)
    assert (answer.status_code, answer.text) == (401, "webhook-timestamp is too far from now (possible replay).\n")


def test_the_development_ca_is_made_once_and_reused(tmp_path, start_receiver):
    first = start_receiver("--secret", generate_secret(), "--port", "0", "--ca-dir", str(tmp_path))
    first.url()
    first.stop()
    ca = (tmp_path / "dev-ca.pem").read_bytes()
    second = start_receiver("--secret", generate_secret(), "--port", "0", "--ca-dir", str(tmp_path))
    url = second.url()
    assert (tmp_path / "dev-ca.pem").read_bytes() == ca
    # The bundle the app uses in development: the public CAs and the dev CA; it verifies the receiver.
    bundle = dev_ca_bundle(tmp_path)
    content = open(bundle, "rb").read()
    assert content.startswith(open(certifi.where(), "rb").read().rstrip(b"\n")) and content.endswith(ca)
    assert requests.get(url, verify=bundle, timeout=10).text == "webhook_receiver: POST your webhooks here.\n"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, verify=certifi.where(), timeout=10)


def test_no_dev_ca_means_no_bundle(tmp_path):
    """Bad input: a CA folder where webhook_receiver never ran."""
    assert dev_ca_bundle(tmp_path) is None


@pytest.mark.parametrize("secret", ["not-a-secret", "whsec_!!!", "whsec_c2hvcnQ="])
def test_a_malformed_secret_is_refused_at_start(secret, tmp_path):
    """Bad input: a secret without the whsec_ prefix, with invalid base64, and with a 5-byte key."""
    done = subprocess.run([sys.executable, "manage.py", "webhook_receiver", "--secret", secret, "--port", "0",
                           "--ca-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "--secret must be a signing secret as shown once by the app: whsec_ + base64 of its key." in done.stderr
