"""The bench harness keeps working: `python -m bench.run --smoke` measures every phase at tiny sizes.

It asserts that every event arrived verified, and that every figure of the
table was produced; never a time (speed is shown by `make bench`, in docs/).
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from webhooks_project import testing

# The bench measures the production stores: run on the services store (deselected on the embedded one).
pytestmark = [pytest.mark.e2e, pytest.mark.services_only]

# The peer needs its own virtualenv from PyPI: `make bench-smoke` (in .ci/run) covers it.
PHASES = "cost,raw,throughput,latency,isolation,controls,retention,log"


def test_smoke_run_delivers_every_event_verified(require_services, tmp_path):
    assert testing.POSTGRES and testing.REDIS, "the bench runs on PostgreSQL and Redis (TEST_STORES=services)"
    output = tmp_path / "smoke.json"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME", "CELERY_TASK_DEFAULT_QUEUE")}
    run = subprocess.run([sys.executable, "-m", "bench.run", "--smoke", "--only", PHASES, "--output", str(output)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "OK: every event arrived verified" in run.stdout
    results = json.loads(output.read_text())
    for phase in ("throughput_1", "throughput_20", "latency", "isolation_calm", "isolation_hang", "controls_ordered",
                  "controls_limited_100"):
        assert results[phase]["lost"] == [] and results[phase]["unverified"] == 0, phase
        assert results[phase].get("per_second") or results[phase].get("p99"), phase
    assert [c["subscriptions"] for c in results["cost"]] == [1, 10, 100]
    assert results["raw"]["p1"] > 0 and results["raw"]["unverified"] == 0
    assert results["log"]["view_page100_ms"] > 0
    # The same pages on SQLite, in the same run (make bench: 1,000,000 deliveries there).
    assert results["log_sqlite"]["rows"] == 2000 and results["log_sqlite"]["view_page100_ms"] > 0
    assert "log page 100 at 2,000 deliveries (SQLite)" in run.stdout
    assert results["log"]["view_search_state_none_match_ms"] > 0 and results["log"]["view_list_table_ms"] > 0
    cycles = results["retention"]["cycles"]
    assert len(cycles) == 3 and all(c["prune_exit"] == 0 for c in cycles)
    # Each day's prune removes exactly the day that aged past the period: 2,000 over 30 days is 66 a day.
    assert results["retention"]["per_day"] == 66
    assert all(c["prune_output"][0].startswith("Pruned 66 deliveries") for c in cycles), cycles
    # Each stage measured is paired: as many sends with the prune stopped as while it ran (the figure is their
    # medians'), and the dry run before the prune counted what the prune then removed.
    assert all(c["stages"]["deliveries"] and len(c["paused"][stage]) == len(sends)
               for c in cycles for stage, sends in c["stages"].items()), cycles
    assert all(c["dry_run"]["deliveries"] == 66 and c["dry_run"]["events"] == 66 for c in cycles), cycles
    assert "longest lock wait" in run.stdout
    assert results["log"]["disk"]["typical_delivery_with_event_and_attempt"] > 0 and "bytes on disk" in run.stdout
    assert results["controls_ordered"]["in_recording_order"] and results["controls_limited_100"]["busiest_second"] > 0
    assert "measure" in run.stdout and "log page 100" in run.stdout  # the table was printed
    assert "endpoint limited to 100/s" in run.stdout
