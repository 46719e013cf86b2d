"""The plain HMAC recipe in docs/RECEIVING.md works on what we sign."""

import time

import pytest

from conftest import ROOT
from delivery.signing import signed_headers
from subscriptions.signing_secrets import generate_secret


@pytest.fixture
def readme_verify():
    readme = (ROOT / "docs" / "RECEIVING.md").read_text(encoding="utf-8")
    recipe = readme.split("**Anything else: plain HMAC-SHA256.**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(recipe, "docs/RECEIVING.md recipe", "exec"), namespace)  # noqa: S102 - our own docs
    return namespace["verify"]


def test_recipe_accepts_our_signature_among_several(readme_verify):
    secret, body = generate_secret(), b'{"id":"evt_1","type":"lot.created"}'
    headers = signed_headers(secret=secret, msg_id="evt_1", timestamp=int(time.time()), body=body)
    headers["webhook-signature"] = "v1,bm90IHRoaXMgb25l " + headers["webhook-signature"]
    assert readme_verify(secret, headers, body) is None


@pytest.mark.parametrize("bad", ["other secret", "altered body", "old timestamp"])
def test_recipe_refuses_bad_deliveries(readme_verify, bad):
    """Bad input: signed with another secret, a body altered after signing, a timestamp 6 minutes old."""
    secret, body = generate_secret(), b'{"id":"evt_1"}'
    ts = int(time.time()) - (360 if bad == "old timestamp" else 0)
    headers = signed_headers(secret=generate_secret() if bad == "other secret" else secret, msg_id="evt_1",
                             timestamp=ts, body=body)
    with pytest.raises(ValueError, match="stale" if bad == "old timestamp" else "bad signature"):
        readme_verify(secret, headers, body + (b" " if bad == "altered body" else b""))
