"""The README's "Automating with the API" block, run as written (bash, curl, jq) against a live server."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from api.tests.conftest import new_key
from delivery.models import Event
from subscriptions.models import Subscription, TrailEntry

pytestmark = [pytest.mark.django_db(transaction=True)]

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block() -> str:
    section = README.read_text().split("## Automating with the API", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readmes_curl_examples_work_as_written(site, org, alice, no_wakeups):
    key = new_key(org, "write", "events", user=alice)
    script = readme_block()
    assert "API=http://127.0.0.1:8000/api/v1" in script and "KEY=whk_..." in script
    # Only the two lines a reader changes: where the server is, and their key.
    script = script.replace("API=http://127.0.0.1:8000/api/v1", f"API={site.url}/api/v1")
    script = script.replace("KEY=whk_...", f"KEY={key}")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "NO_PROXY": "127.0.0.1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    subscription = Subscription.objects.get()
    event = Event.objects.get()
    assert lines[0].startswith("whsec_") and lines[1].startswith("whsec_") and lines[0] != lines[1]
    assert lines[2] == event.webhook_id
    assert lines[3] == f'{{"subscription_id":"{subscription.id}","state":"pending"}}'
    assert lines[4] == "0"  # nothing failed yet
    assert subscription.old_secret_signs_until is not None
    assert set(TrailEntry.objects.values_list("via", flat=True)) == {f"API key {key[:12]}"}
