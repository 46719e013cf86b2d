"""`make run`: migrate, seed a demo organisation, then run web, worker and scheduler together.

Ctrl-C (or SIGTERM) stops all three. Without DATABASE_URL and CELERY_BROKER_URL
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
    if not dot_env.exists():
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
        "worker": [py, "-m", "celery", "-A", "webhooks_project", *worker_args(env)],
        "beat": [py, "-m", "celery", "-A", "webhooks_project", "beat", "--loglevel", "INFO"],
    }
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True) for name, cmd in commands.items()}

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping the others.", flush=True)
                code = proc.returncode or 1
                stopping = True
        time.sleep(0.5)
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return code


if __name__ == "__main__":
    sys.exit(main())
