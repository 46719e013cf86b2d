"""The embedded broker never hands a worker a half-written message."""

import threading

from kombu import Connection

from webhooks_project import embedded_broker


def test_messages_written_while_a_consumer_polls_all_arrive_whole(tmp_path):
    embedded_broker.register()
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "polling_interval": 0}
    sent = [{"n": i, "pad": "x" * 2_000_000} for i in range(100)]  # big enough to be written in several syscalls
    received = []
    errors = []

    def consume():
        with Connection("embedded://", transport_options=options) as conn:
            queue = conn.SimpleQueue("q")
            while len(received) < len(sent):
                try:
                    message = queue.get(timeout=10)
                except Exception as exc:  # an empty or partial file raises here
                    errors.append(exc)
                    return
                received.append(message.payload)
                message.ack()

    consumer = threading.Thread(target=consume)
    consumer.start()
    with Connection("embedded://", transport_options=options) as conn:
        queue = conn.SimpleQueue("q")
        for payload in sent:
            queue.put(payload)
    consumer.join(timeout=60)
    assert errors == []
    assert sorted(m["n"] for m in received) == list(range(100))
    assert all(len(m["pad"]) == 2_000_000 for m in received)
    assert not list(tmp_path.glob("*.partial"))
