"""`make run`'s runner keeps the worker and the scheduler alive, and stops everything when the web server dies.

Each test starts the real runner (`python -m webhooks_project.run`) on SQLite and the embedded
broker, with its database, broker folder and development CA in the test's temporary folder and
the web server on a spare port.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from webhooks_project.run import backoff

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runner:
    """The runner as a child process; its whole output (its children's included) goes to a file."""

    def __init__(self, tmp_path, extra_env):
        self.output_path = tmp_path / "run.out"
        self.env = {**os.environ, "PORT": str(_free_port()), "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
                    "CELERY_FILESYSTEM_BROKER_DIR": str(tmp_path / "broker"), "WEBHOOKS_DEV_CA_DIR": str(tmp_path),
                    "READ_DOT_ENV": "false", "PYTHONUNBUFFERED": "1", **extra_env}
        for name in ("CELERY_BROKER_URL", "TEST_DATABASE_NAME"):  # make run's defaults: the embedded broker
            self.env.pop(name, None)
        self.output = open(self.output_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "webhooks_project.run"], cwd=ROOT, env=self.env,
                                     stdout=self.output, stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 90, count: int = 1) -> re.Match:
        """Return the count-th match of pattern in the output; fail with the output after timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matches = list(re.finditer(pattern, self.text()))
            if len(matches) >= count:
                return matches[count - 1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"no {pattern!r} (x{count}) in the runner's output:\n{self.text()[-4000:]}")

    def manage(self, *args) -> str:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.output.close()


@pytest.fixture
def runner(tmp_path, receiver):
    started = Runner(tmp_path, {"REQUESTS_CA_BUNDLE": str(receiver.ca_path)})
    yield started
    started.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"  # a zombie has died


def pids(runner) -> dict[str, int]:
    line = runner.wait_for(r"web pid (\d+), worker pid (\d+), beat pid (\d+)")
    return dict(zip(("web", "worker", "beat"), map(int, line.groups()), strict=True))


def test_a_killed_worker_is_restarted_and_delivers_afterwards(runner, receiver):
    first = pids(runner)["worker"]
    runner.wait_for(r"celery@\S+ ready\.")

    os.killpg(first, signal.SIGKILL)  # the worker and its threads, as the OOM killer would

    runner.wait_for(r"worker exited with -9; restarting it in [\d.]+ s \(restart 1\)")
    second = int(runner.wait_for(r"worker restarted \(pid (\d+), restart 1\)").group(1))
    assert second != first and alive(second) and not alive(first)
    runner.wait_for(r"celery@\S+ ready\.", count=2)

    runner.manage("create_webhook", "demo", receiver.url, "--activity-types", "lot.created")
    event_id = runner.manage("emit_activity", "demo", "lot.created", "--data", '{"lot_id": "L-1"}').split()[-1]
    deadline = time.monotonic() + 60
    while not any(r.headers.get("webhook-id") == event_id for r in receiver.received):
        assert time.monotonic() < deadline, f"{event_id} never arrived:\n{runner.text()[-4000:]}"
        time.sleep(0.2)
    assert alive(second)


def test_a_killed_scheduler_is_restarted(runner):
    first = pids(runner)["beat"]
    runner.wait_for(r"beat: Starting")

    os.killpg(first, signal.SIGKILL)

    runner.wait_for(r"beat exited with -9; restarting it in [\d.]+ s \(restart 1\)")
    second = int(runner.wait_for(r"beat restarted \(pid (\d+), restart 1\)").group(1))
    assert second != first and alive(second)


def test_the_web_server_dying_stops_everything(runner):
    started = pids(runner)
    runner.wait_for(r"celery@\S+ ready\.")

    os.killpg(started["web"], signal.SIGKILL)

    runner.wait_for(r"web exited with -9; stopping the others\.")
    assert runner.proc.wait(timeout=30) != 0
    assert not alive(started["worker"]) and not alive(started["beat"])


def test_restarts_back_off_up_to_30_seconds():
    assert [backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
