"""Run the peer (django-webhook 0.0.15, bench/peer/) on the same PostgreSQL, Redis and receiver.

Its virtualenv (var/peer-venv) is created from bench/requirements-peer.txt on
first use, apart from ours because its pins may conflict. Its worker runs at
Celery's defaults (prefork, one process per core), as its README starts it.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import ORIGINAL_CA_BUNDLE, stack
from bench.phases import _latencies
from bench.receiver import FastReceiver

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / "bench" / "peer"
VENV = ROOT / "var" / "peer-venv"
REQUIREMENTS = ROOT / "bench" / "requirements-peer.txt"


def venv_ensure() -> Path:
    """Return the peer venv's python, installing it first when missing or out of date."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    if not (stamp.exists() and stamp.read_text() == REQUIREMENTS.read_text()):
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        for attempt in range(3):  # an index hiccup should not cost the whole bench
            # The bench points REQUESTS_CA_BUNDLE at its receiver's test CA; pip must see the machine's own.
            pip_env = {k: v for k, v in os.environ.items() if k != "REQUESTS_CA_BUNDLE"}
            if ORIGINAL_CA_BUNDLE:
                pip_env["REQUESTS_CA_BUNDLE"] = ORIGINAL_CA_BUNDLE
            if not subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
                                  env=pip_env).returncode:
                break
            if attempt == 2:
                raise RuntimeError(f"could not install {REQUIREMENTS} into {VENV}")
        stamp.write_text(REQUIREMENTS.read_text())
    return python


class Peer:
    """`with Peer(rx, database, queue, logdir) as peer:` peer.throughput(n), peer.latency(n, rate)."""

    def __init__(self, rx: FastReceiver, *, database: str, queue: str, logdir: Path):
        self.rx, self.database, self.queue, self.logdir = rx, database, queue, logdir

    def __enter__(self):
        self.python = venv_ensure()
        url = stack.database_create(self.database)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))}
        self.env.update(PEER_DATABASE_URL=url, PEER_BROKER_URL=stack.REDIS_URL, PEER_QUEUE=self.queue,
                        PEER_EXTRA_CA=str(self.rx.ca_path), DJANGO_SETTINGS_MODULE="peerproj.settings",
                        PYTHONPATH=str(PEER_DIR))
        self.path = "/peer/hooks"
        secret = secrets.token_urlsafe(24)
        self.rx.secrets({self.path: secret})
        self._drive("setup", self.rx.url(self.path), secret)
        log = open(self.logdir / "peer-worker.log", "ab")
        self.worker = subprocess.Popen([str(self.python), "-m", "celery", "-A", "peerproj", "worker"],
                                       cwd=PEER_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.warm()
        return self

    def __exit__(self, *exc):
        if self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                self.worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
        stack.queue_purge(self.queue)
        stack.database_drop(self.database)

    def _drive(self, *args) -> dict | None:
        run = subprocess.run([str(self.python), "drive.py", *args], cwd=PEER_DIR, env=self.env,
                             capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"peer drive.py {args[0]} failed:\n{run.stderr[-3000:]}")
        return json.loads(run.stdout) if run.stdout.strip() else None

    def _run(self, count: int, rate: float, timeout: float) -> tuple[dict, dict, dict]:
        result = self._drive("emit", str(count), str(rate))
        committed = result["committed"]
        arrived = self.rx.collect(set(committed), timeout, self.path)
        lost = sorted(set(committed) - arrived.keys())
        return result, arrived, {"lost": lost, "unverified": len(getattr(self.rx, "unverified", []))}

    def warm(self) -> None:
        """Wait for the worker: one delivery has to arrive."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, arrived, outcome = self._run(1, 0, 10)
            if not outcome["lost"]:
                return
        raise RuntimeError("the peer's worker delivered nothing within 60 s; see var/bench/*/peer-worker.log")

    def throughput(self, *, events: int, timeout: float) -> dict:
        result, arrived, outcome = self._run(events, 0, timeout)
        last = max((a.at for a in arrived.values()), default=result["first"])
        return {"events": events, "per_second": len(arrived) / max(last - result["first"], 1e-9), **outcome}

    def latency(self, *, events: int, rate: float, timeout: float) -> dict:
        result, arrived, outcome = self._run(events, rate, timeout)
        return {"events": events, "rate": rate, **_latencies(result["committed"], arrived), **outcome}
