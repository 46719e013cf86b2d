"""The embedded broker never loses, tears or hands out twice a message, whoever writes and reads at once."""

import multiprocessing
import os
import tempfile
import threading
import time

import pytest
from kombu import Connection
from kombu.transport.virtual import BrokerState

from webhooks_project import embedded_broker

embedded_broker.register()


def broker_options(folder) -> dict:
    return {"data_folder_in": str(folder), "data_folder_out": str(folder),
            "control_folder": str(folder / "control"), "polling_interval": 0}


def messages_of(folder, queue) -> list[str]:
    return [name for name in os.listdir(folder) if name.endswith(f".{queue}.msg")]


def test_messages_written_while_a_consumer_polls_all_arrive_whole(tmp_path):
    options = broker_options(tmp_path)
    sent = [{"n": i, "pad": "x" * 2_000_000} for i in range(100)]  # big enough to be written in several syscalls
    received = []
    errors = []

    def consume():
        with Connection("embedded://", transport_options=options) as conn:
            queue = conn.SimpleQueue("whole")
            while len(received) < len(sent):
                try:
                    message = queue.get(timeout=10)
                except Exception as exc:  # an empty or partial file raises here; a lost message, Empty
                    errors.append(exc)
                    return
                received.append(message.payload)
                message.ack()

    consumer = threading.Thread(target=consume)
    consumer.start()
    with Connection("embedded://", transport_options=options) as conn:
        queue = conn.SimpleQueue("whole")
        for payload in sent:
            queue.put(payload)
    consumer.join(timeout=60)
    assert errors == []
    assert sorted(m["n"] for m in received) == list(range(100))
    assert all(len(m["pad"]) == 2_000_000 for m in received)
    assert not list(tmp_path.glob("*.partial"))


def test_threads_declaring_a_queue_at_once_each_route_their_message(tmp_path):
    # Kombu records a binding in the process's memory before writing the exchange's table:
    # a second thread skipped the file, read no table and its message went to no queue.
    lost, errors = 0, []
    for round_ in range(60):
        folder = tmp_path / str(round_)
        folder.mkdir()
        queue_name = f"q{round_}"  # a new binding for this process every round
        barrier = threading.Barrier(4)

        def publish(n, folder=folder, queue_name=queue_name, barrier=barrier):
            with Connection("embedded://", transport_options=broker_options(folder)) as conn:
                channel = conn.default_channel
                barrier.wait()
                try:
                    conn.SimpleQueue(queue_name, channel=channel).put({"n": n})
                except Exception as exc:
                    errors.append(exc)

        threads = [threading.Thread(target=publish, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        lost += 4 - len(messages_of(folder, queue_name))
    assert (lost, errors) == (0, [])


def _publish_in_a_process(folder, n, barrier):
    embedded_broker.Transport.global_state = BrokerState()  # a process of its own, not a fork of this one
    with Connection("embedded://", transport_options=broker_options(folder)) as conn:
        channel = conn.default_channel
        barrier.wait()
        conn.SimpleQueue("q", channel=channel).put({"n": n})


def test_processes_creating_an_exchange_table_at_once_each_route_their_message(tmp_path):
    # Kombu created the table in place (empty, then written): another process read it empty.
    context = multiprocessing.get_context("fork")
    lost = failed = 0
    for round_ in range(30):
        folder = tmp_path / str(round_)
        folder.mkdir()
        barrier = context.Barrier(4)
        processes = [context.Process(target=_publish_in_a_process, args=(folder, n, barrier)) for n in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=30)
        failed += sum(process.exitcode != 0 for process in processes)
        lost += 4 - len(messages_of(folder, "q"))
    assert (lost, failed) == (0, 0)


@pytest.fixture
def temp_folder_on_another_file_system(monkeypatch):
    """Point the process's temporary folder at /dev/shm (tmpfs), as a separate /tmp would be."""
    folder = tempfile.mkdtemp(dir="/dev/shm")
    assert os.stat(folder).st_dev != os.stat(os.getcwd()).st_dev
    monkeypatch.setattr(tempfile, "tempdir", folder)
    yield folder


def test_two_consumers_take_each_message_once_whatever_the_temporary_folder(tmp_path,
                                                                           temp_folder_on_another_file_system):
    # Kombu moved a taken message to the temporary folder: across file systems that is a copy
    # then a delete, and two consumers could both copy (and get) the same message.
    options = broker_options(tmp_path)
    sent = 300
    with Connection("embedded://", transport_options=options) as conn:
        queue = conn.SimpleQueue("shared")
        for n in range(sent):
            queue.put({"n": n, "pad": "x" * 100_000})
    received, errors = [], []

    def consume():
        with Connection("embedded://", transport_options=options) as conn:
            queue = conn.SimpleQueue("shared")
            while True:
                try:
                    message = queue.get(timeout=1)
                except queue.Empty:
                    return
                except Exception as exc:
                    errors.append(exc)
                    return
                received.append(message.payload["n"])
                message.ack()

    consumers = [threading.Thread(target=consume) for _ in range(3)]
    for consumer in consumers:
        consumer.start()
    for consumer in consumers:
        consumer.join(timeout=60)
    duplicated = len(received) - len(set(received))
    print(f"sent {sent}, received {len(received)}, duplicated {duplicated}")
    assert errors == []
    assert sorted(received) == list(range(sent))


def test_once_the_worker_shuts_down_an_empty_poll_ends_at_once_and_a_waiting_message_still_arrives(tmp_path,
                                                                                                  monkeypatch):
    # Celery's loop for this transport polls up to 2 s a turn and one more turn after a warm shutdown is
    # asked: a worker waited about 3 s for nothing after SIGTERM. The case tried: a consumer polling an
    # empty queue for up to 60 s when the worker begins to stop.
    monkeypatch.setattr(embedded_broker, "_stopping", threading.Event())  # this process's flag, restored after
    options = broker_options(tmp_path) | {"polling_interval": 0.1}
    with Connection("embedded://", transport_options=options) as conn:
        queue = conn.SimpleQueue("stopping")
        started = time.monotonic()
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.5)
        assert time.monotonic() - started >= 0.5, "before the shutdown a poll waits out its timeout"

        outcome = []

        def poll():
            began = time.monotonic()
            try:
                queue.get(timeout=60)
                outcome.append("a message")
            except queue.Empty:
                outcome.append(time.monotonic() - began)

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.3)
        embedded_broker.stop_polling()  # Celery's worker_shutting_down
        poller.join(timeout=30)
        assert len(outcome) == 1 and outcome[0] != "a message"
        assert outcome[0] < 10, f"the poll went on for {outcome[0]:.1f} s after the worker began to stop"

        queue.put({"n": 1})  # what is already there is still delivered while stopping
        assert queue.get(timeout=5).payload == {"n": 1}
