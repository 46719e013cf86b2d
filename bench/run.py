"""`python -m bench.run [--smoke]`: start the real stack, measure, print one table.

Everything runs on this machine in one invocation, so figures compare within
the run: our pipeline, the raw sign+POST limit of Python, and the peer
(django-webhook 0.0.15). `--smoke` uses tiny sizes and only checks the
harness: it exits non-zero when any event did not arrive verified, never
because of a time. Results also go to var/bench/results.json (smoke:
var/bench/smoke.json) for docs/performance.png (`python -m bench.chart`).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import stack

ROOT = Path(__file__).resolve().parent.parent
FULL = dict(tp_events=5000, lat_events=600, iso_events=400, rate=20.0, cost_iters=300, log_rows=10_000_000,
            log_sqlite_rows=1_000_000, raw_seconds=10.0, peer_tp=2000, peer_lat=400, timeout=600.0, stmt_events=200,
            ctl_events=2000, retention_rows=10_000_000, retention_events=5000, retention_cycles=3)
SMOKE = dict(tp_events=40, lat_events=20, iso_events=20, rate=20.0, cost_iters=5, log_rows=2000,
             log_sqlite_rows=2000, raw_seconds=1.0, peer_tp=10, peer_lat=10, timeout=60.0, stmt_events=20,
             ctl_events=20, retention_rows=2000, retention_events=20, retention_cycles=3)
PHASES = ("cost", "statements", "raw", "throughput", "latency", "isolation", "controls", "retention", "peer", "log")
# Cores measured beside this one by `--compare`, each from an export of its commit, in the same
# run: the core before issue 11 (two senders, Redis wake keys, batches by COPY) with its own bench
# code, and the one-sender core as issue 17 found it ("before"), driven by this bench's code so that
# every phase (statements per delivery, CPU at a steady rate, profiles) is measured the same way.
# The last two are the receiver controls' merge (issue 19: rate limit, slow-down, order, timeout) and the
# commit before it, both driven by this bench's code: what the controls cost an endpoint that uses none.
OTHER_CORES = (
    {"key": "old_core", "commit": "1b615d1", "phases": "cost,throughput,latency", "our_bench": False},
    {"key": "before", "commit": "c1c0721", "phases": "cost,statements,throughput,latency", "our_bench": True},
    {"key": "without_controls", "commit": "83c89f3", "phases": "throughput,latency", "our_bench": True},
    {"key": "with_controls", "commit": "28e288d", "phases": "throughput,latency", "our_bench": True},
)
OLD_CORE = OTHER_CORES[0]["commit"]


def _other_core(args, core: dict) -> dict:
    """Run a bench of another commit's core from an export of it; return its results ({} if it failed)."""
    tree = ROOT / "var" / "bench" / f"core-{core['commit']}"
    if not (tree / "manage.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", core["commit"]], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    if core["our_bench"]:
        shutil.rmtree(tree / "bench")
        shutil.copytree(ROOT / "bench", tree / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    output = tree / "var" / f"{core['key']}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    command = [sys.executable, "-m", "bench.run", "--only", core["phases"], "--no-compare", "--output", str(output),
               "--workers", str(args.workers), "--emitters", str(args.emitters)]
    if core["our_bench"] and args.profile:
        command += ["--profile", args.profile]
    command += [f"--set={item}" for item in args.set]
    print(f"{core['key']} ({core['commit']}):", " ".join(command[1:]), flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    subprocess.run(command, cwd=tree, env=env, check=False)
    return json.loads(output.read_text()) if output.exists() else {}


def machine() -> dict:
    """Return what this machine is: CPU, cores, memory, versions, load."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))

    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return "?"

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(), "python": platform.python_version(),
        "postgresql": version(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "show server_version"]),
        "redis": "".join(version(["redis-cli", "-h", "127.0.0.1", "info", "server"])
                         .partition("redis_version:")[2].split()[:1]),
        "load_average": os.getloadavg(),
    }


def _setup_django(env: dict) -> None:
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "webhooks_project.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check the harness, not the speed")
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated phases of {','.join(PHASES)}")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "1")),
                        help="worker processes (default 1, or BENCH_WORKERS)")
    parser.add_argument("--emitters", type=int, default=2, help="processes emitting the throughput load (default 2)")
    parser.add_argument("--compare", action=argparse.BooleanOptionalAction, default=None,
                        help=f"also run the old core's own bench (commit {OLD_CORE}) on the pipeline phases, in the "
                             "same run, first (default: on, off with --smoke)")
    parser.add_argument("--cores", default=",".join(c["key"] for c in OTHER_CORES),
                        help="which other cores --compare runs, in this order (default all: "
                             f"{','.join(c['key'] for c in OTHER_CORES)})")
    parser.add_argument("--profile", nargs="?", const="throughput_1,drain,latency", default="", metavar="PHASES",
                        help="py-spy the workers during these phases (default throughput_1,drain,latency; also "
                             "throughput_20, isolation_hang): flame graphs and top self time, in the run's folder")
    parser.add_argument("--output", help="where to write the JSON results")
    parser.add_argument("--set", action="append", default=[], metavar="SIZE=N",
                        help=f"override a size, e.g. --set tp_events=2000 (sizes: {', '.join(FULL)})")
    args = parser.parse_args(argv)
    sizes = dict(SMOKE if args.smoke else FULL)
    if args.compare is None:
        args.compare = not args.smoke
    for item in args.set:
        key, _, value = item.partition("=")
        sizes[key] = type(FULL[key])(value)
    only = set(args.only.split(","))
    started = time.monotonic()
    results: dict = {"machine": machine(), "smoke": args.smoke, "workers": args.workers}
    print("machine:", json.dumps(results["machine"]), flush=True)
    if args.compare:
        cores = {core["key"]: core for core in OTHER_CORES}
        for key in args.cores.split(","):  # in the order asked: run A/B and B/A to see the order's share
            results[key] = _other_core(args, cores[key])

    run_id = f"{os.getpid()}"
    workdir = ROOT / "var" / "bench" / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    database, queue = f"bench_webhooks_{run_id}", f"bench-{run_id}"
    stack.database_create(database)

    from bench.receiver import FastReceiver

    extra = {"WEBHOOKS_TIMEOUT": "2"} if args.smoke else {}
    try:
        with FastReceiver(workdir) as rx:
            env = stack.stack_env(database=database, queue=queue, ca_path=rx.ca_path, extra=extra)
            _setup_django(env)
            results.update(_measure(rx, env, sizes, only, args, workdir, queue))
    finally:
        stack.queue_purge(queue)
        stack.database_drop(database)
    results["seconds"] = time.monotonic() - started
    print(table(results), flush=True)
    output = Path(args.output) if args.output else ROOT / "var" / "bench" / ("smoke.json" if args.smoke
                                                                               else "results.json")
    output.write_text(json.dumps(results, indent=2, default=str))
    problems = failures(results)
    for problem in problems:
        print("FAILED:", problem, flush=True)
    if not problems:
        print(f"OK: every event arrived verified ({results['seconds']:.0f} s).", flush=True)
    return 1 if problems else 0


def _measure(rx, env, sizes, only, args, workdir, queue) -> dict:
    from bench import phases

    out: dict = {}
    timeout = sizes["timeout"]
    if "cost" in only:
        out["cost"] = [phases.caller_cost(rx, subscriptions=n, iterations=sizes["cost_iters"] if n < 100
                                          else max(5, sizes["cost_iters"] // 3)) for n in (1, 10, 100)]
        stack.queue_purge(queue)
        print("cost:", out["cost"], flush=True)
    if "statements" in only:
        from bench.statements import statements_per_delivery

        out["statements"] = statements_per_delivery(rx, events=sizes["stmt_events"])
        stack.queue_purge(queue)
        print("statements:", out["statements"], flush=True)
    if "raw" in only:
        from bench.raw_limit import client_cpu, raw_limit

        rx.secrets({"/raw": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
        secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        kw = dict(url=rx.url("/raw"), secret=secret, ca_path=str(rx.ca_path), seconds=sizes["raw_seconds"])
        out["raw"] = {"p1": raw_limit(processes=1, **kw), "p2": raw_limit(processes=2, **kw),
                      "fresh_p1": raw_limit(processes=1, fresh=True, **kw)}
        out["raw"].update(client_cpu(url=kw["url"], port=rx.port, secret=secret, ca_path=kw["ca_path"],
                                     posts=200 if args.smoke else 2000))
        arrivals = rx.take()
        out["raw"]["unverified"] = sum(1 for a in arrivals if not a.verified)
        print("raw:", out["raw"], flush=True)
    if only & {"throughput", "latency", "isolation", "controls", "retention"}:
        out.update(_pipeline(rx, env, sizes, only, args, workdir, timeout))
    if "peer" in only:
        from bench.peer_run import Peer

        with Peer(rx, database=f"bench_peer_{os.getpid()}", queue=f"bench-peer-{os.getpid()}",
                  logdir=workdir) as peer:
            out["peer"] = {"throughput": peer.throughput(events=sizes["peer_tp"], timeout=timeout),
                           "latency": peer.latency(events=sizes["peer_lat"], rate=sizes["rate"], timeout=timeout)}
        print("peer:", out["peer"], flush=True)
    if "log" in only:
        out["log"] = _log(rx, sizes)
        print("log:", out["log"], flush=True)
        out["log_sqlite"] = _log_sqlite(sizes["log_sqlite_rows"], workdir / "log.sqlite3")
        print("log on SQLite:", out["log_sqlite"], flush=True)
    return out


def _pipeline(rx, env, sizes, only, args, workdir, timeout) -> dict:
    from bench import phases
    from bench.profiles import profiled

    out: dict = {}
    workers = stack.Stack(env, workdir).start(workers=args.workers)
    wanted = set(filter(None, args.profile.split(",")))

    def _profiling(phase):
        return profiled(phase, workers.worker_pids(), workdir / "profiles", out, enabled=phase in wanted)

    try:
        warm = phases.organisation_make("warm")
        phases.endpoint_make(rx, warm, "/warm", ["lot.created"])
        deadline = time.monotonic() + 90
        while True:
            msg_id, _ = phases.emit(warm, "lot.created")
            if rx.collect({msg_id}, 5, "/warm") or time.monotonic() > deadline:
                break
        if only & {"throughput", "throughput_1"}:
            kw = dict(timeout=timeout, env=env, emitters=args.emitters, worker_pids=workers.worker_pids())
            with _profiling("throughput_1"):
                out["throughput_1"] = phases.throughput(rx, events=sizes["tp_events"], endpoints=1, **kw)
            print("throughput_1:", _brief(out["throughput_1"]), flush=True)
        if "throughput" in only:
            with _profiling("throughput_20"):
                out["throughput_20"] = phases.throughput(rx, events=sizes["tp_events"], endpoints=20, **kw)
            print("throughput_20:", _brief(out["throughput_20"]), flush=True)
            with _profiling("drain"):
                out["drain"] = phases.drain(rx, events=sizes["tp_events"], **kw)
            # Messages of deliveries a batch already sent are still queued: the next phase
            # would wait behind them. How long they take is a figure of its own.
            out["drain"]["stale_queue_seconds"] = stack.queue_wait_empty(env["CELERY_TASK_DEFAULT_QUEUE"])
            print("drain:", _brief(out["drain"]), flush=True)
        stack.queue_wait_empty(env["CELERY_TASK_DEFAULT_QUEUE"])
        if "latency" in only:
            with _profiling("latency"):
                out["latency"] = phases.latency(rx, events=sizes["lat_events"], rate=sizes["rate"], timeout=timeout,
                                                worker_pids=workers.worker_pids())
            print("latency:", _brief(out["latency"]), flush=True)
        stack.queue_wait_empty(env["CELERY_TASK_DEFAULT_QUEUE"])
        if "isolation" in only:
            out["isolation_calm"] = phases.isolation(rx, events=sizes["iso_events"], rate=sizes["rate"],
                                                     timeout=timeout, hang=False)
            with _profiling("isolation_hang"):
                out["isolation_hang"] = phases.isolation(rx, events=sizes["iso_events"], rate=sizes["rate"],
                                                         timeout=timeout, hang=True)
            print("isolation:", _brief(out["isolation_calm"]), _brief(out["isolation_hang"]), flush=True)
            # Fair share: another organisation's 3 endpoints hang (each holds a sender until the deadline).
            out["fair_share"] = phases.fair_share(rx, events=sizes["iso_events"], rate=sizes["rate"],
                                                  timeout=timeout, hostile=3)
            print("fair share:", _brief(out["fair_share"]), flush=True)
        if "controls" in only:
            stack.queue_wait_empty(env["CELERY_TASK_DEFAULT_QUEUE"])
            for name, figures in phases.controls(rx, events=sizes["ctl_events"], timeout=timeout, env=env,
                                                 emitters=args.emitters, worker_pids=workers.worker_pids()).items():
                out[f"controls_{name}"] = figures
                print(f"controls_{name}:", _brief(figures), flush=True)
        if "retention" in only:  # before the log phase: its rows older than the period would be pruned too
            from bench.retention import retention

            stack.queue_wait_empty(env["CELERY_TASK_DEFAULT_QUEUE"])
            out["retention"] = retention(
                rx, rows=sizes["retention_rows"], events=sizes["retention_events"], cycles=sizes["retention_cycles"],
                env=env, database=env["DATABASE_URL"].rsplit("/", 1)[1],
                kw=dict(timeout=timeout, env=env, emitters=args.emitters, worker_pids=workers.worker_pids()))
    finally:
        workers.stop()
    return out


def _log(rx, sizes) -> dict:
    from django.contrib.auth import get_user_model

    from bench import phases
    from bench.log_scale import log_scale
    from organisations.models import Membership

    org = phases.organisation_make("log")
    subscription = phases.endpoint_make(rx, org, "/log", ["lot.created", "order.created"])
    user = get_user_model().objects.create_user(username=f"bench-{org.slug}", password="bench-" + "x" * 20)
    Membership.objects.create(user=user, organisation=org, role=Membership.Role.ADMIN)
    figures = log_scale(subscription, user, rows=sizes["log_rows"])
    from django.db import connection

    from bench.disk_bytes import measure

    with connection.cursor() as cursor:  # bytes on disk of the rows just generated
        figures["disk"] = measure(cursor, attempts=20 if sizes["log_rows"] < 100_000 else 2000)
    return figures


def _log_sqlite(rows: int, path: Path) -> dict:
    """The same pages on SQLite (`bench.log_scale --sqlite`, in its own process: this one's settings are
    PostgreSQL's), on a new file of `rows` deliveries; return its figures."""
    run = subprocess.run([sys.executable, "-m", "bench.log_scale", "--rows", str(rows), "--sqlite", str(path),
                          "--fresh"], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if run.returncode != 0:
        raise SystemExit(f"bench.log_scale on SQLite failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def _brief(figures: dict) -> dict:
    return {k: (round(v, 1) if isinstance(v, float) else (len(v) if isinstance(v, list) else v))
            for k, v in figures.items()}


def failures(results: dict) -> list[str]:
    """Return what did not arrive verified, phase by phase."""
    problems = []
    for name in ("throughput_1", "throughput_20", "drain", "latency", "isolation_calm", "isolation_hang",
                 "fair_share", "controls_ordered", "controls_limited_100"):
        for label, scope in (("", results), *((f"{core['key']} ", results.get(core["key"]) or {})
                                              for core in OTHER_CORES if core["our_bench"])):
            figures = scope.get(name)
            if figures and (figures["lost"] or figures["unverified"]):
                problems.append(f"{label}{name}: {len(figures['lost'])} lost, {figures['unverified']} unverified")
    for name in ("throughput", "latency"):
        figures = results.get("peer", {}).get(name)
        if figures and (figures["lost"] or figures["unverified"]):
            problems.append(f"peer {name}: {len(figures['lost'])} lost, {figures['unverified']} unverified")
    if results.get("retention"):
        from bench.retention import lost

        problems += lost(results["retention"])
    if results.get("raw", {}).get("unverified"):
        problems.append(f"raw: {results['raw']['unverified']} unverified")
    return problems


def table(results: dict) -> str:
    """Return the results as one text table."""
    from bench.report import render

    return render(results)


if __name__ == "__main__":
    sys.exit(main())
