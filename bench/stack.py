"""The real stack for one bench run: its own PostgreSQL database and Redis queue, N workers, beat.

Workers are started with the project's own worker command (webhooks_project.run.worker_args)
and settings, the way `make run` and production start them, DEBUG off.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from webhooks_project.run import worker_args

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")


def database_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def database_create(name: str) -> str:
    """Create an empty database (dropping a leftover of the same name); return its URL."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


def database_drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def queue_purge(queue: str) -> None:
    """Forget every message waiting in a Redis queue (the bench's own)."""
    import redis

    redis.Redis.from_url(REDIS_URL).delete(queue)


def queue_wait_empty(queue: str, timeout: float = 120.0) -> float:
    """Return the seconds until the Redis queue held no message (at most timeout)."""
    import time

    import redis

    client = redis.Redis.from_url(REDIS_URL)
    start = time.monotonic()
    while client.llen(queue) and time.monotonic() - start < timeout:
        time.sleep(0.05)
    return time.monotonic() - start


def stack_env(*, database: str, queue: str, ca_path: Path, extra: dict | None = None) -> dict:
    """Return the environment our processes run with: the project's settings, pointed at the bench's parts."""
    env = dict(os.environ)
    for name in ("TEST_DATABASE_NAME", "CELERY_FILESYSTEM_BROKER_DIR"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=database_url(database),
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        REQUESTS_CA_BUNDLE=str(ca_path),
        WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true",
        SECRET_KEY=env.get("SECRET_KEY") or "bench-secret-key-" + "x" * 40,
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        # The bench's logs are generated up to 30 days back, and its retention phase runs `prune_deliveries`
        # itself: its beat's hourly prune must find nothing of them (at 30 days it pruned them beside the
        # bench's own pruner once they had aged past the period at wall-clock time: docs/PERFORMANCE.md).
        WEBHOOKS_RETENTION_DAYS="36500",
    )
    env.update(extra or {})
    return env


class Stack:
    """Celery workers and beat with the bench's environment; stop() ends all of them."""

    def __init__(self, env: dict, logdir: Path):
        self.env = env
        self.logdir = logdir
        self.procs: list[subprocess.Popen] = []

    def _start(self, args: list[str], name: str) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "webhooks_project", *args], cwd=ROOT,
                                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self, *, workers: int, beat: bool = True) -> "Stack":
        for i in range(workers):
            self._start([*worker_args(self.env), "--hostname", f"bench{i}@%h"], f"worker-{i}")
        if beat:
            self._start(["beat", "--loglevel", "WARNING", "--schedule", str(self.logdir / "beat-schedule")], "beat")
        return self

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.procs[:-1]] if len(self.procs) > 1 else [p.pid for p in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()
