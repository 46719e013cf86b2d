"""One settings module, read from the environment with django-environ.

Every variable is listed in `.env.example`. Each has a safe default for a
developer's machine, or fails loudly when it matters in production.
"""

import base64
import hashlib
import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
# `make run` writes a development .env (DEBUG, private networks) so that commands
# run from a second shell see the same settings; real variables always win.
if env.bool("READ_DOT_ENV", default=True):
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
SECRET_KEY = env("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else None)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "organisations",
    "subscriptions",
    "delivery",
    "alerts",
    "demo",
    "operations",
    "console",
    "ninja",  # the API reference page's own static files (Swagger UI), served like ours: no CDN
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "webhooks_project.urls"
WSGI_APPLICATION = "webhooks_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "organisations.context_processors.current_organisation",
                "organisations.context_processors.private_networks",
            ],
        },
    },
]



def _readable_url(name: str, default: str) -> str:
    """Return the URL in the environment variable, or stop the start if a password in it is not percent-encoded.

    Unencoded, a `#`, `?` or `/` in a password ends the URL's user part early, and the parsers'
    errors quote what they took for a port: a piece of the password. The value is never echoed.
    """
    url = env(name, default=default)
    try:
        urlsplit(url).port  # noqa: B018 - reading the port is the check: it raises on a cut-short user part
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} cannot be read: percent-encode the characters : / ? # [ ] @ % in its user name and password "
            "(for example # as %23, / as %2F, ? as %3F, @ as %40). The value is not shown.") from None
    return url


# SQLite under var/ by default; PostgreSQL in CI and production.
DATABASES = {"default": env.db_url_config(_readable_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and scheduler share the file: WAL lets readers run beside the
    # writer, IMMEDIATE transactions queue writers instead of failing them.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
else:
    # Persistent connections: a worker reuses its connection across deliveries.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # PostgreSQL compiles a query whose estimated cost passes jit_above_cost: at 10M deliveries the estimate of a
    # branch the health query never runs passes it, and compiling took 12 to 190 ms of a query that runs in
    # 0.24 ms without it (issue 20, docs/PERFORMANCE.md). Our queries are short, so off unless DATABASE_JIT=true
    # (behind a pooler that refuses the `options` startup parameter: that, and `ALTER DATABASE ... SET jit = off`).
    if not env.bool("DATABASE_JIT", default=False):
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
# Tests name their own database so that several runs can share one server.
if env("TEST_DATABASE_NAME", default=None):
    DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failures within the cool-off, lock a
# username+address pair (guessing one password) and an address whatever the usernames (spraying one
# password over many), on /accounts/login/ and /django-admin/ alike.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
# Off: a success clears every failure counted for its address, so one account the sprayer
# owns would reset the address's count between rounds. Failures expire with the cool-off.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Reverse proxies in front of the web process that append to X-Forwarded-For (0: clients connect
# directly). Behind a proxy, without it, every client shares the proxy's address and its lock.
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)
AXES_CLIENT_IP_CALLABLE = "webhooks_project.client_address.client_address"
AXES_VERBOSE = False

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` writes; WhiteNoise serves it from every web process.
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# Web hardening outside DEBUG.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Probes and Prometheus call the processes directly on the private network, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SAMESITE = "Lax"
# No page script reads the CSRF cookie (forms carry the token), so JavaScript never needs it.
CSRF_COOKIE_HTTPONLY = True

# Content-Security-Policy (django-csp): our own origin only, no inline script or
# style ('unsafe-inline' never); a template that needs an inline block uses
# nonce="{{ request.csp_nonce }}", and the nonce is then added to the header.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# Logs: one line per record on stderr, `text` or `json` (operations/log_format.py): extra fields
# kept, any named like a secret redacted, Celery's lines about the frequent periodic tasks dropped at INFO.
LOG_FORMAT = env("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'text' or 'json', not {LOG_FORMAT!r}.")
from operations.log_format import logging_config  # noqa: E402 - needs no app loaded

LOGGING = logging_config(log_format=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))

# --- Operations ---------------------------------------------------------------
# /metrics answers only with `Authorization: Bearer <METRICS_TOKEN>`; without a token it is off (404).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# prometheus-client's multiprocess mode: each process (web, worker) writes its counters here and
# /metrics adds them up. One folder per machine, emptied when all its processes are stopped.
PROMETHEUS_MULTIPROC_DIR = Path(env("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
# prometheus-client reads the variable itself, when first imported (after settings).
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)

# --- Celery -----------------------------------------------------------------
# The embedded default is kombu's filesystem transport (with atomic writes, see
# webhooks_project/embedded_broker.py): no server to run, shared
# by every process on this machine through var/broker/. It forgets nothing that
# was written, but a message taken by a worker that then dies is gone; the
# sweeper re-enqueues such deliveries from the database, which is the source
# of truth. Use Redis in production.
CELERY_BROKER_URL = _readable_url("CELERY_BROKER_URL", "embedded://")
if CELERY_BROKER_URL.startswith(("embedded://", "filesystem://")):
    _broker_dir = Path(env("CELERY_FILESYSTEM_BROKER_DIR", default=str(VAR_DIR / "broker")))
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": 0.1,
    }
else:
    # No ETA tasks are ever published (retries are scheduled in the database),
    # so the visibility timeout only has to outlast one reserved delivery.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="webhooks")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
# Keep database connections across tasks (Celery's Django fix-up closes them
# around every task unless this is set): webhooks_project.celery closes only
# broken or expired ones instead. A new connection per delivery cost more than the delivery.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=2**31)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Webhooks ---------------------------------------------------------------
# Only what a user must decide is a setting; tuning constants live in the module
# that uses them (delivery.sender, delivery.slots, delivery.health, delivery.wakeups).
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", default=False)
# The hard deadline of one request, the whole exchange (delivery.transport).
WEBHOOKS_TIMEOUT = env.float("WEBHOOKS_TIMEOUT", default=10.0)
WEBHOOKS_RETRY_SCHEDULE = [
    int(s) for s in env.list("WEBHOOKS_RETRY_SCHEDULE", default=["5", "300", "1800", "7200", "18000", "36000", "36000"])
]
WEBHOOKS_MAX_PAYLOAD_BYTES = env.int("WEBHOOKS_MAX_PAYLOAD_BYTES", default=256 * 1024)
# The management API: requests per minute per key (429 with Retry-After beyond), counted in the cache
# below. Set CACHE_URL to a shared cache (redis://...) when the web runs as several processes, or each
# process counts its own minute.
WEBHOOKS_API_RATE_LIMIT = env.int("WEBHOOKS_API_RATE_LIMIT", default=6000)
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
WEBHOOKS_RESPONSE_BODY_LIMIT = env.int("WEBHOOKS_RESPONSE_BODY_LIMIT", default=64 * 1024)
# CA bundle that endpoints are verified against; None means certifi's bundle.
WEBHOOKS_CA_BUNDLE = env("REQUESTS_CA_BUNDLE", default=None)
# In development, also trust the CA of `manage.py webhook_receiver` (var/dev-ca.pem, once it exists):
# WEBHOOKS_CA_BUNDLE becomes REQUESTS_CA_BUNDLE's CAs (certifi's when unset) + that CA, written to
# var/dev-ca-bundle.pem. Never outside DEBUG.
WEBHOOKS_DEV_CA_DIR = Path(env("WEBHOOKS_DEV_CA_DIR", default="") or VAR_DIR)
if DEBUG:
    from webhooks_project.dev_ca import dev_ca_bundle

    WEBHOOKS_CA_BUNDLE = dev_ca_bundle(WEBHOOKS_DEV_CA_DIR, base=WEBHOOKS_CA_BUNDLE) or WEBHOOKS_CA_BUNDLE
# Retention: finished deliveries (with their attempts) and their events are
# pruned this many days after they finished, by a scheduled task.
WEBHOOKS_RETENTION_DAYS = env.float("WEBHOOKS_RETENTION_DAYS", default=30.0)


def _derived_key(secret: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(f"webhook-secrets:{secret}".encode()).digest()).decode()


# Fernet keys for signing secrets at rest, newest first: the first encrypts,
# all decrypt (docs/SECURITY.md: rotation). Without them a key is derived from
# SECRET_KEY; the entry `SECRET_KEY` names that derived key, so a deployment can
# move to explicit keys with WEBHOOKS_ENCRYPTION_KEYS=<new key>,SECRET_KEY and
# then `manage.py rotate_encryption_keys`.
WEBHOOKS_ENCRYPTION_KEYS = [
    _derived_key(SECRET_KEY) if key == "SECRET_KEY" else key
    for key in env.list("WEBHOOKS_ENCRYPTION_KEYS", default=[])
] or [_derived_key(SECRET_KEY)]
for _n, _key in enumerate(WEBHOOKS_ENCRYPTION_KEYS, start=1):
    try:
        _valid_key = len(base64.urlsafe_b64decode(_key.encode())) == 32
    except ValueError:
        _valid_key = False
    if not _valid_key:
        # The key itself is never echoed.
        raise ImproperlyConfigured(
            f"WEBHOOKS_ENCRYPTION_KEYS entry {_n} is not a Fernet key (32 url-safe base64-encoded bytes); "
            "make one with `python manage.py rotate_encryption_keys --generate-key`."
        )

CELERY_BEAT_SCHEDULE = {
    "sweep-due-deliveries": {
        "task": "delivery.tasks.sweep_due_deliveries",
        "schedule": 2.0,  # delivery.wakeups.SWEEP_INTERVAL (settings load before apps)
    },
    # The worker's and the scheduler's heartbeat (operations/heartbeat.py), for /readyz. A message
    # that waited 10 s is dropped: run late, it would prove a worker alive that was not.
    "heartbeat": {
        "task": "operations.tasks.heartbeat",
        "schedule": 5.0,
        "options": {"expires": 10.0},
    },
    # Digests of deliveries that failed for good (alerts.services.alerts_lost_send): at most one per
    # endpoint every hour; this only looks for endpoints with something new to tell.
    "email-lost-deliveries": {
        "task": "alerts.tasks.email_lost_deliveries",
        "schedule": 60.0,
        "options": {"expires": 50.0},
    },
    # The charts' closed hours summed up once each (delivery.charts.closed_hours_summarise): a page then
    # reads the roll-up of the open hours and of those closed since the last run only.
    "summarise-closed-hours": {
        "task": "delivery.tasks.summarise_closed_hours",
        "schedule": 300.0,
        "options": {"expires": 290.0},
    },
    "prune-old-deliveries": {
        "task": "delivery.tasks.prune_old_deliveries",
        "schedule": 3600.0,
    },
    # Retention of secrets: the old secret of a planned rotation is deleted within 30 s of its end.
    "forget-expired-old-secrets": {
        "task": "subscriptions.tasks.forget_expired_old_secrets",
        "schedule": 30.0,
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Email and alerts (alerts/) ---------------------------------------------
# Admins are emailed when an endpoint starts failing or is paused automatically (docs/OPERATIONS.md).
# SITE_URL: this site's address as users reach it, for the links in those emails.
SITE_URL = env("SITE_URL", default=f"http://127.0.0.1:{env('PORT', default='8000')}")
# SMTP from the environment. Under DEBUG (`make run`) with no EMAIL_HOST, emails are printed on the
# console instead; outside DEBUG the default is an SMTP server on localhost:25.
EMAIL_HOST = env("EMAIL_HOST", default="")
EMAIL_BACKEND = (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG and not EMAIL_HOST
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = EMAIL_HOST or "localhost"
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="GrowerIQ Webhooks <webhooks@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Alerts are sent by the worker that saw the failure: a mail server that hangs delays that one
# endpoint's sending by at most this long (seconds).
EMAIL_TIMEOUT = 10
