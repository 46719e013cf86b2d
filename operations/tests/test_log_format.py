"""Log lines: extra fields carried in text and JSON, secrets redacted, frequent periodic tasks quiet at INFO."""

import io
import json
import logging

import pytest

from operations.log_format import JsonLineFormatter, QuietPeriodicTasks, RedactSecrets, TextFormatter

ATTEMPT = {"event_id": "evt_1", "delivery_id": "d-1", "organisation": 7, "endpoint_host": "hooks.example.com",
           "outcome": "succeeded", "duration_ms": 42}


def _emit(formatter, level=logging.INFO, msg="Attempt 1 of evt_1: HTTP 200 in 42 ms", args=(), extra=None,
          name="delivery.sender", root_level=logging.INFO):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecrets())
    handler.addFilter(QuietPeriodicTasks())
    logger = logging.getLogger(f"test.{name}")
    logger.name = name  # the filter looks at the record's logger name
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level, root.level = root.level, root_level
    try:
        logger.log(level, msg, *args, extra=extra)
    finally:
        root.level = old_level
        logger.handlers = []
    return stream.getvalue()


def test_json_lines_carry_the_attempt_fields():
    line = json.loads(_emit(JsonLineFormatter(), extra=ATTEMPT))
    assert line["message"] == "Attempt 1 of evt_1: HTTP 200 in 42 ms"
    assert line["level"] == "INFO" and line["logger"] == "delivery.sender"
    assert {k: line[k] for k in ATTEMPT} == ATTEMPT
    assert line["time"].endswith("+00:00")


def test_text_lines_carry_the_attempt_fields_after_the_message():
    line = _emit(TextFormatter(), extra=ATTEMPT)
    assert "INFO delivery.sender Attempt 1 of evt_1: HTTP 200 in 42 ms event_id=evt_1 delivery_id=d-1" in line
    assert "outcome=succeeded duration_ms=42" in line


@pytest.mark.parametrize("formatter", [JsonLineFormatter(), TextFormatter()])
def test_an_extra_field_named_like_a_secret_is_never_written(formatter):
    line = _emit(formatter, extra={"signing_secret": "whsec_c2VjcmV0", "Authorization": "Bearer abc",
                                   "password": "hunter2", "outcome": "failed"})
    assert "whsec_c2VjcmV0" not in line and "Bearer abc" not in line and "hunter2" not in line
    assert "[redacted]" in line and "failed" in line


@pytest.mark.parametrize(("name", "msg", "args"), [
    ("celery.beat", "Scheduler: Sending due task %s (%s)", ("sweep-due-deliveries",
                                                           "delivery.tasks.sweep_due_deliveries")),
    ("celery.beat", "Scheduler: Sending due task %s (%s)", ("heartbeat", "operations.tasks.heartbeat")),
    ("celery.worker.strategy", "Task %(name)s[%(id)s] received",
     ({"name": "delivery.tasks.sweep_due_deliveries", "id": "1"},)),
    ("celery.app.trace", "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
     ({"name": "operations.tasks.heartbeat", "id": "1", "runtime": 0.01, "return_value": None},)),
])
def test_routine_lines_of_frequent_periodic_tasks_are_dropped_at_info(name, msg, args):
    assert _emit(TextFormatter(), name=name, msg=msg, args=args) == ""
    # ...and shown when the logs are at DEBUG.
    assert name in _emit(TextFormatter(), name=name, msg=msg, args=args, root_level=logging.DEBUG)


def test_lines_of_sending_tasks_hourly_tasks_and_failures_stay():
    received = ({"name": "delivery.tasks.send_endpoint", "id": "1"},)
    assert "send_endpoint" in _emit(TextFormatter(), name="celery.worker.strategy",
                                    msg="Task %(name)s[%(id)s] received", args=received)
    pruned = ("prune-old-deliveries", "delivery.tasks.prune_old_deliveries")
    assert "prune" in _emit(TextFormatter(), name="celery.beat", msg="Scheduler: Sending due task %s (%s)",
                            args=pruned)
    failed = ({"name": "delivery.tasks.sweep_due_deliveries", "id": "1", "exc": "OperationalError()"},)
    assert "raised" in _emit(TextFormatter(), level=logging.ERROR, name="celery.app.trace",
                             msg="Task %(name)s[%(id)s] raised unexpected: %(exc)s", args=failed)
