"""Receivers in other languages can verify our deliveries: real deliveries checked by three verifiers.

The deliveries are real (a Celery worker POSTs to an HTTPS receiver); each one
is verified by the `standardwebhooks` and `svix` Python libraries and by the
`standardwebhooks` npm package through Node (delivery/tests/node/verify.mjs).
Node and the package are required: `.ci/run` installs them with
`npm ci --prefix delivery/tests/node`; without them these tests fail.
"""

import json
import shutil
import subprocess

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

from conftest import ROOT, make_subscription
from demo import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NODE_DIR = ROOT / "delivery" / "tests" / "node"


class Refused(Exception):
    pass


def verify_python_standardwebhooks(secret, headers, body: bytes) -> dict:
    try:
        return StandardWebhook(secret).verify(body, headers)
    except Exception as exc:
        raise Refused(f"standardwebhooks (Python): {exc}") from exc


def verify_python_svix(secret, headers, body: bytes) -> dict:
    try:
        SvixWebhook(secret).verify(body, headers)  # returns nothing; raises on a bad signature
    except Exception as exc:
        raise Refused(f"svix (Python): {exc}") from exc
    return json.loads(body)


def verify_node_standardwebhooks(secret, headers, body: bytes) -> dict:
    node = shutil.which("node")
    assert node, "node is not installed (.ci/run installs it)"
    assert (NODE_DIR / "node_modules" / "standardwebhooks").is_dir(), (
        "the standardwebhooks npm package is missing: run `npm ci --prefix delivery/tests/node`"
    )
    request = json.dumps({"secret": secret, "headers": headers, "body": body.decode("utf-8")})
    done = subprocess.run([node, "verify.mjs"], cwd=NODE_DIR, input=request, capture_output=True, text=True,
                          timeout=60)
    answer = json.loads(done.stdout or "{}") if done.stdout.startswith("{") else {}
    if done.returncode != 0 or not answer.get("verified"):
        raise Refused(f"standardwebhooks (Node): {answer.get('error') or done.stderr.strip()}")
    return answer["payload"]


VERIFIERS = (verify_python_standardwebhooks, verify_python_svix, verify_node_standardwebhooks)


def ship_an_order(org):
    """Return the lot and shipment made by the demo domain (lot.created, then shipment.shipped)."""
    lot = services.lot_create(organisation=org, product="Dried Flower – Blüte", strain="Blue Dream",
                              weight_grams="5000", location="Vault A")
    order = services.order_create(organisation=org, customer="Société des alcools", lines=[("BD-3.5G", 12, "8.75")])
    shipment = services.shipment_ship(order=order, lots=[lot], carrier="Purolator", tracking_number="PUR1CA",
                                      shipped_by="l.nguyen")
    return lot, shipment


def test_all_three_verifiers_accept_real_deliveries(require_services, org, receiver, worker):
    _, secret = make_subscription(org, url=receiver.url, activity_types=["lot.created", "shipment.shipped"])
    lot, shipment = ship_an_order(org)

    requests = receiver.wait_for(2)
    assert sorted(r.json["type"] for r in requests) == ["lot.created", "shipment.shipped"]
    for request in requests:
        payloads = [verify(secret, request.headers, request.body) for verify in VERIFIERS]
        assert payloads == [request.json] * 3
    by_type = {r.json["type"]: r.json["data"] for r in requests}
    assert by_type["lot.created"]["product"] == "Dried Flower – Blüte"
    assert by_type["shipment.shipped"]["shipment_id"] == shipment.code
    assert by_type["shipment.shipped"]["lots"] == [lot.code]


def test_all_three_verifiers_refuse_a_tampered_body_and_a_wrong_secret(require_services, org, receiver, worker):
    """Bad input: a real delivery's body with one character changed, and the right body under another secret."""
    _, secret = make_subscription(org, url=receiver.url, activity_types=["lot.created"])
    services.lot_create(organisation=org, product="Dried Flower", strain="Blue Dream", weight_grams="5000",
                        location="Vault A")
    (request,) = receiver.wait_for(1)
    tampered = request.body.replace(b'"weight_grams":5000.0', b'"weight_grams":9000.0')
    assert tampered != request.body
    _, other_secret = make_subscription(org, url=receiver.url, activity_types=["capa.opened"])
    for verify in VERIFIERS:
        assert verify(secret, request.headers, request.body) == request.json
        with pytest.raises(Refused):
            verify(secret, request.headers, tampered)
        with pytest.raises(Refused):
            verify(other_secret, request.headers, request.body)
