"""`python -m bench.metrics_chart [out.png]`: docs/metrics.png, the dashboard's series from a real run.

No Grafana can be installed here, so this draws the panels of docs/grafana-dashboard.json
from one scripted run of the real stack (SQLite + the embedded broker, as `make run`;
a worker and beat as separate processes; two HTTPS receivers on 127.0.0.1):

- 0 s: 4 events/s to each of two endpoints, until 110 s;
- 15 to 45 s: endpoint B answers 500 (its breaker opens, its deliveries wait);
- 95 to 110 s: the worker is stopped, then started again.

Gauges are read each second from the same collectors as /metrics. Attempts per second and
their p95 are counted from the run's Attempt rows (one row per attempt, what
webhooks_attempts_total and webhooks_attempt_duration_seconds count).
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_SECONDS, EMIT_UNTIL, FAIL, STOPPED = 130, 110, (15, 45), (95, 110)


def _env(tmp: Path, ca_bundle: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME")}
    env.update(DEBUG="false", SECRET_KEY="metrics-chart-" + "x" * 50, READ_DOT_ENV="false",
               DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}", CELERY_FILESYSTEM_BROKER_DIR=str(tmp / "broker"),
               PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"), REQUESTS_CA_BUNDLE=str(ca_bundle),
               WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true", WEBHOOKS_RETRY_SCHEDULE="5,10,20,40,80",
               DJANGO_SETTINGS_MODULE="webhooks_project.settings", PYTHONUNBUFFERED="1")
    return env


def _celery(env, tmp, *args):
    log = open(tmp / f"{args[0]}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "webhooks_project", *args], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


WORKER = ("worker", "--pool", "threads", "--concurrency", "8", "--without-mingle", "--without-gossip",
          "--without-heartbeat", "--loglevel", "WARNING")


def run(tmp: Path) -> dict:
    from delivery.tests.receiver import Receiver

    (tmp / "b").mkdir()
    with Receiver(tmp) as a, Receiver(tmp / "b") as b:
        bundle = tmp / "cas.pem"
        bundle.write_text(a.ca_path.read_text() + b.ca_path.read_text())
        env = _env(tmp, bundle)
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from delivery.metrics import DatabaseCollector
        from operations.heartbeat import heartbeat_ages
        from organisations.models import Organisation
        from subscriptions.activity import record_activity
        from subscriptions.services import subscription_create

        org = Organisation.objects.create(slug="chart", name="Chart")
        for receiver in (a, b):
            subscription_create(organisation=org, url=receiver.url, activity_types=["lot.created"])
        worker = _celery(env, tmp, *WORKER)
        beat = _celery(env, tmp, "beat", "--loglevel", "WARNING", "--schedule", str(tmp / "beat-schedule"))
        samples, start, emitted = [], time.monotonic(), 0
        try:
            while (t := time.monotonic() - start) < RUN_SECONDS:
                b.default = 500 if FAIL[0] <= t < FAIL[1] else 200
                if worker is not None and STOPPED[0] <= t < STOPPED[1]:
                    worker.terminate()
                    worker.wait(timeout=30)
                    worker = None
                elif worker is None and t >= STOPPED[1]:
                    worker = _celery(env, tmp, *WORKER)
                while t < EMIT_UNTIL and emitted < t * 4:
                    record_activity(organisation=org, activity_type="lot.created", data={"n": emitted})
                    emitted += 1
                gauges = {m.name: m.samples[0].value for m in DatabaseCollector().collect()}
                samples.append({"t": t, **gauges, **{f"heartbeat_{k}": v for k, v in heartbeat_ages().items()}})
                time.sleep(max(0.0, 1.0 - (time.monotonic() - start - t)))
        finally:
            for proc in (worker, beat):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)
        from delivery.models import Attempt

        wall = time.time() - (time.monotonic() - start)  # the run's start on the wall clock
        attempts = [(a.started_at.timestamp() - wall, a.status_code, a.duration_ms)
                    for a in Attempt.objects.only("started_at", "status_code", "duration_ms")]
    return {"samples": samples, "attempts": attempts}


def chart(data: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = data["samples"]
    t = [x["t"] for x in s]
    fig, axes = plt.subplots(3, 2, figsize=(12, 9), sharex=True)
    (due, age), (rate, p95), (breakers, beats) = axes

    def shade(ax):
        ax.axvspan(*FAIL, color="#fed7d7", alpha=0.6, lw=0)
        ax.axvspan(*STOPPED, color="#e2e8f0", alpha=0.8, lw=0)
        ax.grid(alpha=0.3)

    due.plot(t, [x["webhooks_deliveries_due"] for x in s], color="#2b6cb0")
    due.set_title("Due backlog (webhooks_deliveries_due)")
    age.plot(t, [x["webhooks_oldest_due_delivery_age_seconds"] for x in s], color="#2b6cb0")
    age.set_title("Oldest due delivery, seconds")
    seconds = range(RUN_SECONDS)
    ok = [sum(1 for a in data["attempts"] if int(a[0]) == i and a[1] and 200 <= a[1] < 300) for i in seconds]
    bad = [sum(1 for a in data["attempts"] if int(a[0]) == i and not (a[1] and 200 <= a[1] < 300)) for i in seconds]
    rate.plot(list(seconds), ok, color="#38a169", label="succeeded")
    rate.plot(list(seconds), bad, color="#e53e3e", label="failed (retrying or given up)")
    rate.set_title("Attempts per second by outcome")
    rate.legend(loc="upper right", fontsize=8)
    windows = range(0, RUN_SECONDS, 5)
    p95s = []
    for w in windows:
        d = sorted(a[2] for a in data["attempts"] if w <= a[0] < w + 5)
        p95s.append(d[int(0.95 * (len(d) - 1))] if d else float("nan"))
    p95.plot([w + 2.5 for w in windows], p95s, color="#805ad5", marker=".")
    p95.set_title("Attempt duration p95, ms (5 s windows)")
    breakers.plot(t, [x["webhooks_breakers_open"] for x in s], color="#dd6b20", label="breakers open")
    breakers.plot(t, [x["webhooks_subscriptions_paused"] for x in s], color="#718096", label="subscriptions paused")
    breakers.set_title("Open breakers, paused subscriptions")
    breakers.legend(loc="upper right", fontsize=8)
    for role, color in (("worker", "#2b6cb0"), ("scheduler", "#38a169")):
        beats.plot(t, [x[f"heartbeat_{role}"] or 0 for x in s], color=color, label=role)
    beats.axhline(30, color="#e53e3e", ls="--", lw=1, label="/readyz limit")
    beats.set_title("Seconds since heartbeat (webhooks_heartbeat_age_seconds)")
    beats.legend(loc="upper left", fontsize=8)
    for ax in axes.flat:
        shade(ax)
    for ax in axes[-1]:
        ax.set_xlabel("seconds into the run (red: endpoint B answers 500; grey: worker stopped)")
    fig.suptitle("Webhooks metrics, one scripted run: 8 events/s over two endpoints", fontsize=12)
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else ROOT / "docs" / "metrics.png"
    with tempfile.TemporaryDirectory(prefix="metrics-chart-") as tmp:
        data = run(Path(tmp))
    chart(data, out)
    print(f"wrote {out}: {len(data['samples'])} samples, {len(data['attempts'])} attempts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
