"""Our signer and verifier, checked against the standardwebhooks and svix libraries."""

import hmac
import time
from datetime import UTC, datetime

import pytest
import svix.webhooks
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from delivery import signing
from delivery.signing import SignatureError, sign, signed_headers, verify
from subscriptions.signing_secrets import generate_secret

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
BODY = b'{"id":"msg_1","type":"lot.created","data":{"lot_id":"LOT-1"}}'


def headers(secret=SECRET, *, msg_id="msg_1", timestamp=None, body=BODY):
    return signed_headers(secret=secret, msg_id=msg_id, timestamp=int(timestamp or time.time()), body=body)


# --- our signatures pass the reference verifiers ------------------------------

def test_standardwebhooks_and_svix_accept_our_signature():
    sent = headers()
    assert Webhook(SECRET).verify(BODY, sent)["data"] == {"lot_id": "LOT-1"}
    svix.webhooks.Webhook(SECRET).verify(BODY, sent)  # returns None, raises when it refuses
    verify(secrets=SECRET, headers=sent, body=BODY)


def test_the_reference_verifiers_refuse_another_secrets_signature():
    """Control: the reference libraries really check, so the test above can fail."""
    sent = headers(OTHER)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, sent)
    with pytest.raises(svix.webhooks.WebhookVerificationError):
        svix.webhooks.Webhook(SECRET).verify(BODY, sent)


@given(
    msg_id=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    body=st.binary(max_size=2000).map(lambda b: b.hex().encode()),
    timestamp=st.integers(min_value=0, max_value=2**33),
)
def test_our_signature_equals_the_reference_signature(msg_id, body, timestamp):
    secret = generate_secret()
    reference = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode())
    assert sign(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) == reference


def test_our_verifier_accepts_what_standardwebhooks_signs():
    now = int(time.time())
    signature = Webhook(SECRET).sign("msg_2", datetime.fromtimestamp(now, tz=UTC), BODY.decode())
    sent = {"webhook-id": "msg_2", "webhook-timestamp": str(now), "webhook-signature": signature}
    verify(secrets=SECRET, headers=sent, body=BODY)


# --- several signatures, several secrets ----------------------------------------

def test_several_signatures_in_one_header_any_one_matching_is_enough():
    sent = headers()
    # As during a rotation: an unknown version, a stale signature, then the good one.
    stale = headers(OTHER)["webhook-signature"]
    sent["webhook-signature"] = f"v1a,Zm9v {stale} {sent['webhook-signature']}"
    verify(secrets=SECRET, headers=sent, body=BODY)
    assert Webhook(SECRET).verify(BODY, sent)  # the reference agrees


def test_a_receiver_may_hold_the_old_and_new_secret_while_rotating():
    verify(secrets=[OTHER, SECRET], headers=headers(SECRET), body=BODY)


def test_a_header_with_only_non_v1_signatures_is_refused():
    # Bad input: a signature under a scheme we do not use (v1a), though its bytes match.
    sent = headers()
    sent["webhook-signature"] = sent["webhook-signature"].replace("v1,", "v1a,")
    with pytest.raises(SignatureError, match="No matching signature"):
        verify(secrets=SECRET, headers=sent, body=BODY)


# --- refusals ---------------------------------------------------------------

@pytest.mark.parametrize(
    ("bad_input", "change"),
    [
        ("tampered body", {"body": BODY.replace(b"LOT-1", b"LOT-2")}),
        ("body with one added byte", {"body": BODY + b" "}),
        ("other message id", {"headers": {"webhook-id": "msg_other"}}),
        ("signed by another secret", {"secrets": OTHER}),
    ],
)
def test_a_changed_message_is_refused(bad_input, change):
    sent = {**headers(), **change.get("headers", {})}
    with pytest.raises(SignatureError, match="No matching signature"):
        verify(secrets=change.get("secrets", SECRET), headers=sent, body=change.get("body", BODY))


def test_a_shifted_timestamp_is_refused_even_when_fresh():
    # Bad input: the timestamp header moved by one second after signing.
    sent = headers()
    sent["webhook-timestamp"] = str(int(sent["webhook-timestamp"]) + 1)
    with pytest.raises(SignatureError, match="No matching signature"):
        verify(secrets=SECRET, headers=sent, body=BODY)


@pytest.mark.parametrize(
    ("age", "accepted"),
    [(0, True), (299, True), (-299, True), (301, False), (-301, False), (86400, False)],
)
def test_timestamps_within_five_minutes_are_accepted_others_refused(age, accepted):
    # Bad input (when refused): a replayed old message, or one from the future.
    now = 1_800_000_000
    sent = headers(timestamp=now - age)
    if accepted:
        verify(secrets=SECRET, headers=sent, body=BODY, now=now)
    else:
        with pytest.raises(SignatureError, match="too far from now"):
            verify(secrets=SECRET, headers=sent, body=BODY, now=now)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing):
    # Bad input: one of the three headers left out.
    sent = {k: v for k, v in headers().items() if k != missing}
    with pytest.raises(SignatureError, match="Missing"):
        verify(secrets=SECRET, headers=sent, body=BODY)


def test_a_non_numeric_timestamp_is_refused():
    # Bad input: an ISO date instead of unix seconds.
    sent = {**headers(), "webhook-timestamp": "2026-01-01T00:00:00Z"}
    with pytest.raises(SignatureError, match="whole number"):
        verify(secrets=SECRET, headers=sent, body=BODY)


def test_header_names_are_matched_case_insensitively():
    sent = {k.title(): v for k, v in headers().items()}
    verify(secrets=SECRET, headers=sent, body=BODY)


def test_signatures_are_compared_in_constant_time(monkeypatch):
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    sent = headers()
    sent["webhook-signature"] = "v1,Zm9v " + sent["webhook-signature"]
    verify(secrets=SECRET, headers=sent, body=BODY)
    assert len(compared) == 2  # every candidate goes through compare_digest, none through ==


def test_the_secret_never_appears_in_an_error():
    sent = headers(OTHER)
    with pytest.raises(SignatureError) as caught:
        verify(secrets=SECRET, headers=sent, body=BODY)
    assert SECRET not in str(caught.value) and SECRET.removeprefix("whsec_") not in str(caught.value)
