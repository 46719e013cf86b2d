"""The peer: a minimal Django project sending webhooks with django-webhook 0.0.15 at its defaults.

Only what a project must set is set: the database, the broker, the model to
watch. The receiver's CA is added to the CA bundle requests uses by default
(certifi's), as a public CA would already be there; nothing else is tuned.
"""

import os
import tempfile
from urllib.parse import urlsplit

import certifi
import requests.adapters

_db = urlsplit(os.environ["PEER_DATABASE_URL"])

SECRET_KEY = "peer-bench-only-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "peerapp",
    "django_webhook",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname,
        "PORT": _db.port or 5432,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DJANGO_WEBHOOK = {"MODELS": ["peerapp.Lot"]}

CELERY_BROKER_URL = os.environ["PEER_BROKER_URL"]
CELERY_TASK_DEFAULT_QUEUE = os.environ["PEER_QUEUE"]  # its own queue on the shared Redis; no other effect

if os.environ.get("PEER_EXTRA_CA"):
    _bundle = os.path.join(tempfile.gettempdir(), f"peer-ca-bundle-{os.getpid()}.pem")
    with open(_bundle, "w") as out, open(certifi.where()) as public, open(os.environ["PEER_EXTRA_CA"]) as extra:
        out.write(public.read() + "\n" + extra.read())
    requests.adapters.DEFAULT_CA_BUNDLE_PATH = _bundle
