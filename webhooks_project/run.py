"""`make run`: migrate, seed a demo organisation, then run web, worker and scheduler together.

Ctrl-C (or SIGTERM) stops all three. A worker or scheduler that dies is restarted, with a
back-off, and the runner says so; if the web server dies, everything stops. Without DATABASE_URL and CELERY_BROKER_URL
it runs on SQLite and the embedded filesystem broker under var/.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_ORG = "demo"
DEMO_ADMIN = "admin"


def worker_args(env) -> list[str]:
    """Return the `celery -A webhooks_project` arguments of one delivery worker (also used by bench/)."""
    return ["worker", "--pool", "threads", "--concurrency", env.get("WORKER_CONCURRENCY", "8"),
            "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel", "INFO"]


DOT_ENV = """# Written by `make run` for development, so that manage.py commands run from
# another shell share its settings. Production reads the real environment.
DEBUG=true
WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true
"""


def main() -> int:
    dot_env = ROOT / ".env"
    if os.environ.get("READ_DOT_ENV", "true").lower() not in ("false", "0", "no") and not dot_env.exists():
        dot_env.write_text(DOT_ENV)
        print(f"Wrote {dot_env.name} (DEBUG=true, WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true) for development.")
    env = dict(os.environ)
    env.setdefault("DEBUG", "true")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Development: endpoints on 127.0.0.1 (such as `manage.py webhook_receiver`) may be subscribed.
    env.setdefault("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true")
    port = env.get("PORT", "8000")
    password = env.get("DEMO_ADMIN_PASSWORD", "webhooks-demo")
    py = sys.executable

    def manage(*args):
        subprocess.run([py, "manage.py", *args], cwd=ROOT, env=env, check=True)

    # Counters of the previous run's processes (prometheus-client's multiprocess files) start again from zero.
    metrics_dir = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or ROOT / "var" / "metrics")
    for stale in metrics_dir.glob("*.db"):
        stale.unlink(missing_ok=True)
    manage("migrate", "--noinput", "-v0")
    manage("create_organisation", DEMO_ORG, "--name", "Demo Cultivation", "--admin", DEMO_ADMIN,
           "--password", password)
    manage("seed_demo", DEMO_ORG)
    # Make webhook_receiver's development CA now, so the worker trusts it from its start.
    from webhooks_project.dev_ca import load_or_create_ca

    load_or_create_ca(Path(env.get("WEBHOOKS_DEV_CA_DIR") or ROOT / "var"))
    print(f"\n  Webhooks is starting on http://127.0.0.1:{port}/")
    print(f"  Log in as {DEMO_ADMIN!r} with password {password!r} (organisation {DEMO_ORG!r}).\n", flush=True)

    commands = {
        "web": [py, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        # --quiet: no start-up banners; their log lines (ready, restarts, deliveries) still show.
        "worker": [py, "-m", "celery", "-A", "webhooks_project", "--quiet", *worker_args(env)],
        "beat": [py, "-m", "celery", "-A", "webhooks_project", "--quiet", "beat", "--loglevel", "INFO"],
    }
    return supervise(commands, env=env)


RESTARTABLE = ("worker", "beat")  # the web server dying stops everything: the user sees it at once
STABLE_AFTER = 60.0  # seconds of running after which a restart's back-off starts again from the first step


def backoff(restarts_in_a_row: int) -> float:
    """Return the seconds to wait before the n-th restart in a row: 1, 2, 4, 8, 16, then 30."""
    return min(30.0, 2.0 ** (restarts_in_a_row - 1))


class Child:
    """One supervised process: its command, the running Popen and its restart count."""

    def __init__(self, name, command, env):
        self.name, self.command, self.env = name, command, env
        self.proc = None
        self.started_at = 0.0
        self.restarts = 0  # in all, for the messages
        self.in_a_row = 0  # restarts since it last ran STABLE_AFTER seconds
        self.start_at = None  # when a restart is due (monotonic), while it is waiting

    def start(self):
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, start_new_session=True)
        self.started_at = time.monotonic()
        self.start_at = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def schedule_restart(self) -> float:
        if time.monotonic() - self.started_at >= STABLE_AFTER:
            self.in_a_row = 0
        self.in_a_row += 1
        self.restarts += 1
        delay = backoff(self.in_a_row)
        self.start_at = time.monotonic() + delay
        return delay

    def signal(self, sig):
        if self.running():
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass


def supervise(commands: dict[str, list[str]], *, env) -> int:
    """Run the commands until Ctrl-C, SIGTERM or the web server exits; restart a worker or beat that dies.

    Returns the exit code for `make run`: 0 after Ctrl-C or SIGTERM, else the web server's.
    """
    children = [Child(name, command, env) for name, command in commands.items()]
    for child in children:
        child.start()
    print("  " + ", ".join(f"{c.name} pid {c.proc.pid}" for c in children) + " (Ctrl-C stops all)\n", flush=True)

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for child in children:
            if child.start_at is not None:
                if time.monotonic() >= child.start_at:
                    child.start()
                    print(f"{child.name} restarted (pid {child.proc.pid}, restart {child.restarts})", flush=True)
            elif not child.running():
                returncode = child.proc.returncode
                if child.name not in RESTARTABLE:
                    print(f"{child.name} exited with {returncode}; stopping the others.", flush=True)
                    code = returncode or 1
                    stopping = True
                    break
                restart = child.restarts + 1
                delay = child.schedule_restart()
                print(f"{child.name} exited with {returncode}; restarting it in {delay:g} s (restart {restart})",
                      flush=True)
        time.sleep(0.2)
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        if child.proc is None:
            continue
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.signal(signal.SIGKILL)
    return code


if __name__ == "__main__":
    sys.exit(main())
