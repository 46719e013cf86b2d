"""An endpoint's own timeout is the hard deadline of its whole exchange: through a real worker to a real receiver."""

import time

import pytest

from conftest import WORKER_ARGS, make_subscription, wait_until
from delivery.models import Attempt
from delivery.tests.receiver import answer
from subscriptions.activity import record_activity

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The worker's default timeout is shorter than the patient endpoint's and longer than the hasty one's answer
# would need, so each outcome is the endpoint's own timeout at work. A long retry: one attempt each.
ENV = {"WEBHOOKS_TIMEOUT": "10", "WEBHOOKS_RETRY_SCHEDULE": "600"}


def test_a_patient_endpoint_waits_for_its_slow_answer_and_a_hasty_one_is_cut_at_its_own_timeout(
        require_services, org, receiver, celery_process):
    """25 s endpoint answering in 20 s: a success; 2 s endpoint answering in 5 s: a timeout at 2 s."""
    def slow(handler):
        time.sleep(20 if handler.path == "/patient" else 5)
        try:
            answer(handler, 200)
        except OSError:
            pass  # the hasty endpoint's sender hung up

    celery_process(*WORKER_ARGS, env=ENV)
    receiver.default = slow
    base = receiver.url.removesuffix("/hooks")
    patient, _ = make_subscription(org, url=f"{base}/patient", timeout_seconds=25)
    hasty, _ = make_subscription(org, url=f"{base}/hasty", timeout_seconds=2)

    record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-1"})

    kept = wait_until(lambda: Attempt.objects.filter(delivery__subscription=patient).first(), timeout=60,
                      message="the patient endpoint's attempt")
    cut = Attempt.objects.get(delivery__subscription=hasty)
    assert kept.status_code == 200 and kept.error_kind == "", (kept.error_kind, kept.error_message)
    assert kept.duration_ms >= 20_000
    assert cut.error_kind == Attempt.ErrorKind.TIMEOUT and cut.status_code is None
    assert "within 2 s" in cut.error_message, cut.error_message
    assert cut.duration_ms < 5_000  # cut at its own 2 s, not after the answer's 5 s nor the default 10 s
