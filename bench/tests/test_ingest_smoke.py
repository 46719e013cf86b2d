"""The ingest bench keeps working: `python -m bench.ingest --smoke` measures every phase at tiny sizes.

It asserts that every call was answered 201 and that every figure was produced; never a time (the
figures are in docs/PERFORMANCE.md).
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


def test_the_ingest_bench_measures_the_api_beside_the_signal_path(require_services):
    assert testing.POSTGRES and testing.REDIS, "the bench runs on PostgreSQL and Redis (TEST_STORES=services)"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME", "CELERY_TASK_DEFAULT_QUEUE")}
    run = subprocess.run([sys.executable, "-m", "bench.ingest", "--smoke"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((ROOT / "var" / "bench" / "ingest-smoke.json").read_text())
    assert results["in_process"]["statements"] == 7  # the key, BEGIN, event, deliveries, tally, COMMIT, wake row
    assert results["signal"]["events"] == 40 and results["api_one"]["events"] == 40
    assert results["api_paced"]["calls"] == 100 and results["api_batch"]["events"] == 200
    for line in ("signal path (record_activity)", "API, one event per call", "API at 100 calls/s",
                 "API, batch of 100 per call"):
        assert line in run.stdout
