"""Settings of Prompt Studio, read from environment variables only.

With no variable set the studio runs on its embedded default: SQLite in the
data folder, a local-memory cache and a Celery transport that needs no server.
See the settings table in README.md for every variable.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from studio.env import env_bool, env_choice, env_float, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("STUDIO_DATA_DIR", BASE_DIR / "data")
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)

INSECURE_SECRET_KEY = "django-insecure-prompt-studio-development-key-change-me"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", INSECURE_SECRET_KEY)
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
if not DEBUG and (SECRET_KEY == INSECURE_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "DEBUG is off but SECRET_KEY is the development default or shorter than 32 characters. "
        "Set SECRET_KEY to a long random value."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.core",
    "apps.audit",
    "apps.accounts",
    "apps.prompts",
    "apps.webhooks",
    "apps.reviews",
    "apps.providers",
    "apps.playground",
    "apps.datasets",
    "apps.experiments",
    "apps.ratings",
    "apps.traces",
    "apps.monitoring",
    "apps.rollouts",
    "apps.api",
    "axes",  # login throttling; last, so its admin and migrations follow the project's
]
# Every app's demo data (seed_demo): installed last, since it imports them all, and only on the embedded
# default (DEBUG on); a production configuration has no demo app, so it cannot seed the known login.
if DEBUG:
    INSTALLED_APPS.append("apps.demo")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it turns a refused sign-in into the lockout page
]

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"

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
                "apps.accounts.context_processors.projects",
                "apps.accounts.context_processors.project_nav",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
SQLITE_PATH = DATA_DIR / "studio.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{SQLITE_PATH}")
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
except Exception as exc:  # dj_database_url raises several types for a malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        # Web server and worker share the file: WAL, a busy timeout and IMMEDIATE
        # transactions keep writers from failing with "database is locked".
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    _db["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db["CONN_HEALTH_CHECKS"] = True
else:
    raise ImproperlyConfigured("DATABASE_URL must be a postgres:// or sqlite:/// URL.")
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USING_POSTGRES = _db["ENGINE"] == "django.db.backends.postgresql"

# --- Cache --------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "studio",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -------------------------------------------------------------------
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The file broker is polled: every 0.02 s instead of kombu's 1 s, so queued batches start without a pause.
        # A worker whose processes are all busy also waits one interval before taking the next message: at 0.1 s
        # that idled the ingest worker ~30% of the time under a backlog. An idle poll lists a folder (~20 us).
        "polling_interval": 0.02,
    }
else:
    # Longer than any task's hard time limit, so a slow task is never delivered twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "interactive"
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 900, minimum=1)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Worker and beat processes write a heartbeat this often; one silent for HEARTBEAT_STALE_SECONDS is dead.
HEARTBEAT_SECONDS = env_float("HEARTBEAT_SECONDS", 5.0, minimum=0.5)
HEARTBEAT_STALE_SECONDS = env_float("HEARTBEAT_STALE_SECONDS", 30.0, minimum=2.0)
# Processes in the pool of the worker that `make run` starts.
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 2, minimum=1)
# How long `make run` waits for a child to stop after SIGTERM before it kills the child's whole session.
RUNSTUDIO_STOP_SECONDS = env_float("RUNSTUDIO_STOP_SECONDS", 10.0, minimum=0.5)
# Beat sweeps expired claims this often, and so does every worker (so a dead beat stops nothing).
EXPERIMENT_SWEEP_SECONDS = env_float("EXPERIMENT_SWEEP_SECONDS", 10.0, minimum=1.0)
CELERY_BEAT_SCHEDULE: dict = {
    "worker-heartbeat": {"task": "core.heartbeat", "schedule": 30.0, "options": {"expires": 25}},
    "experiments-sweep": {
        "task": "experiments.sweep",
        "schedule": EXPERIMENT_SWEEP_SECONDS,
        "options": {"expires": EXPERIMENT_SWEEP_SECONDS, "queue": "experiments"},
    },
}

# --- Experiments --------------------------------------------------------------
EXPERIMENT_BATCH_SIZE = env_int("EXPERIMENT_BATCH_SIZE", 50, minimum=1)
EXPERIMENT_MAX_CALLS = env_int("EXPERIMENT_MAX_CALLS", 200_000, minimum=1)
EXPERIMENT_MAX_REPEATS = env_int("EXPERIMENT_MAX_REPEATS", 20, minimum=1)
# Calls one worker process keeps in flight per experiment; it claims the next cells as calls end.
EXPERIMENT_WINDOW = env_int("EXPERIMENT_WINDOW", 50, minimum=1)
# A worker renews its cells' claims every quarter of this; a killed worker's cells are taken over once it expires.
EXPERIMENT_CLAIM_SECONDS = env_int("EXPERIMENT_CLAIM_SECONDS", 12, minimum=3)
# A pending cell whose batch message has not run for this long is enqueued again (a lost message).
EXPERIMENT_REQUEUE_SECONDS = env_int("EXPERIMENT_REQUEUE_SECONDS", 900, minimum=10)

# --- Production traces (apps/traces) ------------------------------------------
# 429 with Retry-After when this many accepted batches wait for the ingest worker.
INGEST_MAX_PENDING_BATCHES = env_int("INGEST_MAX_PENDING_BATCHES", 2000, minimum=1)
INGEST_RETRY_AFTER_SECONDS = env_int("INGEST_RETRY_AFTER_SECONDS", 5, minimum=1)
INGEST_BACKLOG_CHECK_MS = env_int("INGEST_BACKLOG_CHECK_MS", 500, minimum=0)
INGEST_MAX_BODY_MB = env_int("INGEST_MAX_BODY_MB", 10, minimum=1)
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 5, minimum=1)
INGEST_REQUEUE_SECONDS = env_int("INGEST_REQUEUE_SECONDS", 120, minimum=5)
TRACE_RETENTION_DAYS = env_int("TRACE_RETENTION_DAYS", 30, minimum=1)
TRACE_DELETE_CHUNK = env_int("TRACE_DELETE_CHUNK", 5000, minimum=1)
CELERY_BEAT_SCHEDULE["traces-sweep"] = {"task": "traces.sweep", "schedule": 60.0, "options": {"expires": 55}}
CELERY_BEAT_SCHEDULE["traces-retention"] = {
    "task": "traces.retention",
    "schedule": 3600.0,
    "options": {"expires": 3000, "queue": "ingest"},
}

# --- Monitoring (apps/monitoring) ----------------------------------------------
# How often the beat task evaluates the alert rules.
MONITORING_ALERT_SECONDS = env_int("MONITORING_ALERT_SECONDS", 300, minimum=10)
CELERY_BEAT_SCHEDULE["monitoring-alerts"] = {
    "task": "monitoring.evaluate_alerts",
    "schedule": float(MONITORING_ALERT_SECONDS),
    "options": {"expires": MONITORING_ALERT_SECONDS - 5},
}
# Online evaluation: sampled generations per task message, model calls one task keeps in flight, how long a
# claim lasts before the sweep hands the evaluation to another worker.
ONLINE_EVAL_BATCH = env_int("ONLINE_EVAL_BATCH", 50, minimum=1)
ONLINE_EVAL_CONCURRENCY = env_int("ONLINE_EVAL_CONCURRENCY", 8, minimum=1)
ONLINE_EVAL_CLAIM_SECONDS = env_int("ONLINE_EVAL_CLAIM_SECONDS", 600, minimum=30)
# Finished evaluations (and daily budget rows) older than this are deleted by the sweep; their scores stay.
ONLINE_EVAL_KEEP_DAYS = env_int("ONLINE_EVAL_KEEP_DAYS", 30, minimum=1)
CELERY_BEAT_SCHEDULE["monitoring-online-sweep"] = {
    "task": "monitoring.online_sweep",
    "schedule": 120.0,
    "options": {"expires": 115},
}
# An alert rule on drift reuses a report of the same prompt and window made less than this many minutes ago.
MONITORING_DRIFT_REUSE_MINUTES = env_int("MONITORING_DRIFT_REUSE_MINUTES", 60, minimum=0)

# --- Canary releases (apps/rollouts) --------------------------------------------
# How often the beat task looks at every running canary (roll back on harm, promote a finished step).
ROLLOUT_WATCH_SECONDS = env_int("ROLLOUT_WATCH_SECONDS", 60, minimum=5)
CELERY_BEAT_SCHEDULE["rollouts-watch"] = {
    "task": "rollouts.watch",
    "schedule": float(ROLLOUT_WATCH_SECONDS),
    "options": {"expires": ROLLOUT_WATCH_SECONDS - 2},
}

# --- Auth, i18n, static -------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failed sign-ins for one
# account, or from one address, further attempts are refused for LOGIN_LOCKOUT_MINUTES
# (429 and a page that says so), even with the right password. The studio login and
# the admin login share it. A successful sign-in clears the account's failures.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: per account and per address
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env_path("STATIC_ROOT", BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("STATIC_MANIFEST", not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = env_bool("STATIC_USE_FINDERS", DEBUG)

# --- Security -----------------------------------------------------------------
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Joining the browsers' HSTS preload list is the operator's decision (SECURE_HSTS_PRELOAD), not a default.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024, minimum=1024)

# --- Email --------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Prompt Studio <studio@localhost>")

# --- Logging ------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "LiteLLM": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        "mcp": {"level": "WARNING"},  # one line per MCP request and session otherwise
    },
}

# --- Prompt templates ---------------------------------------------------------
TEMPLATE_RENDER_TIMEOUT_MS = env_int("TEMPLATE_RENDER_TIMEOUT_MS", 200, minimum=1)
TEMPLATE_RENDER_MAX_CHARS = env_int("TEMPLATE_RENDER_MAX_CHARS", 200_000, minimum=100)
TEMPLATE_MAX_SOURCE_CHARS = env_int("TEMPLATE_MAX_SOURCE_CHARS", 100_000, minimum=100)
# Templates that are not plain render in worker processes with these bounds (prompt_studio.sandbox).
TEMPLATE_RENDER_ISOLATION = env_bool("TEMPLATE_RENDER_ISOLATION", True)
TEMPLATE_RENDER_WORKERS = env_int("TEMPLATE_RENDER_WORKERS", 2, minimum=1)
TEMPLATE_RENDER_MEMORY_MB = env_int("TEMPLATE_RENDER_MEMORY_MB", 256, minimum=64)

# --- Reviews: emails and webhooks --------------------------------------------
# The address of the studio as users reach it, for links in review emails.
STUDIO_BASE_URL = env_str("STUDIO_BASE_URL", "http://127.0.0.1:8000")
# Webhooks may call private and loopback addresses (127.0.0.1, 10.x, ...): handy in
# development and tests, an SSRF risk in production, so off unless DEBUG is on.
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", DEBUG)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 6, minimum=1)
WEBHOOK_RETRY_BASE_SECONDS = env_float("WEBHOOK_RETRY_BASE_SECONDS", 10.0, minimum=0.0)
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.5)

# --- Model endpoints and the gateway (apps/providers) --------------------------
# Secrets that encrypt provider API keys at rest; the first encrypts, all decrypt (rotation: README).
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", [])
GATEWAY_RETRY_BASE_SECONDS = env_float("GATEWAY_RETRY_BASE_SECONDS", 0.5, minimum=0)
GATEWAY_RETRY_MAX_SECONDS = env_float("GATEWAY_RETRY_MAX_SECONDS", 20.0, minimum=0)
GATEWAY_RETRY_AFTER_MAX_SECONDS = env_float("GATEWAY_RETRY_AFTER_MAX_SECONDS", 60.0, minimum=0)
# Local GGUF models served by llama-cpp-python's OpenAI-compatible server (README: Local models).
LOCAL_MODELS = env_bool("LOCAL_MODELS", DEBUG)
LOCAL_MODELS_DIR = env_path("LOCAL_MODELS_DIR", DATA_DIR / "local_models")
LOCAL_MODEL_PATH = env_str("LOCAL_MODEL_PATH", "")
LOCAL_MODEL_PORT = env_int("LOCAL_MODEL_PORT", 8011, minimum=1)
LOCAL_MODEL_THREADS = env_int("LOCAL_MODEL_THREADS", 2, minimum=1)
LOCAL_MODEL_CONTEXT = env_int("LOCAL_MODEL_CONTEXT", 4096, minimum=256)
# An optional second local model for plain text completions, served on LOCAL_MODEL_PORT + 1 (off: empty).
# The names are the slugs of apps.providers.local_models.COMPLETION_MODELS.
LOCAL_MODEL_COMPLETION = env_choice("LOCAL_MODEL_COMPLETION", "", ("", "gemma-3-270m"))
# --- Datasets -----------------------------------------------------------------
DATASET_UPLOAD_DIR = DATA_DIR / "dataset-uploads"
# A team's own counterfactual lexicons (JSON, like apps/datasets/lexicons/); <dir>/<project slug>/ for one project.
LEXICON_DIR = env_path("LEXICON_DIR", DATA_DIR / "lexicons")
DATASET_MAX_UPLOAD_MB = env_int("DATASET_MAX_UPLOAD_MB", 50, minimum=1)
DATASET_MAX_ROWS = env_int("DATASET_MAX_ROWS", 1_000_000, minimum=1)
DATASET_MAX_CELL_CHARS = env_int("DATASET_MAX_CELL_CHARS", 100_000, minimum=10)
# An XLSX file is a zip: bound what it unpacks to and the cells its sheets declare before parsing it.
DATASET_XLSX_MAX_UNPACKED_MB = env_int("DATASET_XLSX_MAX_UNPACKED_MB", 100, minimum=1)
DATASET_XLSX_MAX_CELLS = env_int("DATASET_XLSX_MAX_CELLS", 5_000_000, minimum=1)
# Files larger than this are imported by a Celery task on the `experiments` queue, with a progress bar.
DATASET_ASYNC_IMPORT_BYTES = env_int("DATASET_ASYNC_IMPORT_BYTES", 2 * 1024 * 1024, minimum=0)
DATASET_UPLOAD_TTL_HOURS = env_int("DATASET_UPLOAD_TTL_HOURS", 24, minimum=1)

# --- REST API for apps (apps/api) -----------------------------------------------
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "6000/min")
if not re.fullmatch(r"\s*(off|0|\d+\s*/\s*(s|sec|second|min|minute|h|hour|day))\s*", API_THROTTLE_RATE.lower()):
    raise ImproperlyConfigured(f"API_THROTTLE_RATE={API_THROTTLE_RATE!r}: use a count per period (600/min) or off.")
API_CACHE_POLL_MS = env_int("API_CACHE_POLL_MS", 500, minimum=0)
if API_CACHE_POLL_MS > 1000:
    raise ImproperlyConfigured("API_CACHE_POLL_MS must be at most 1000: label moves must show within a second.")
API_CACHE_MAX_AGE_SECONDS = env_int("API_CACHE_MAX_AGE_SECONDS", 300, minimum=1)
API_CACHE_CONTROL_MAX_AGE = env_int("API_CACHE_CONTROL_MAX_AGE", 0, minimum=0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.auth.HasKey"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.api.throttling.KeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.api.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.api.negotiation.JsonOnly",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Prompt Studio API",
    "DESCRIPTION": "Fetch and render released prompts; save versions and move labels from CI.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.api.schema.describe_text_rules",
        "apps.api.schema.require_bodies",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PromptTypeEnum": ["text", "chat"],
        "VariableTypeEnum": "apps.prompts.sandbox.VARIABLE_TYPES",
    },
}

# --- Demo ---------------------------------------------------------------------
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-studio"  # noqa: S105 - the documented login of the embedded demo only

# Content-Security-Policy (django-csp) on every response: scripts and style sheets come only from this
# origin (no inline <script>, no event-handler attributes, no eval, no inline <style>); style="" attributes
# stay allowed for progress-bar widths and plotly's own positioning, which cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-elem": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
