"""Django settings for VoxelSearch.

12-factor: every setting that differs between machines comes from an environment variable and has
a working default for the embedded set-up (SQLite in ``var/``, Redis on localhost, media in
``var/media``). See the README's "Settings" section for the list.
"""
import os
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VOXELSEARCH_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- core -------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1", "testserver"})

_DEV_SECRET_KEY = "dev-insecure-voxelsearch-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    # The development key is public (it is in this file): anyone could sign sessions with it.
    # It is allowed only while the server answers to this machine alone.
    if not set(ALLOWED_HOSTS) <= LOCAL_HOSTS:
        raise ImproperlyConfigured(
            f"SECRET_KEY is not set but ALLOWED_HOSTS ({', '.join(ALLOWED_HOSTS)}) reaches beyond this "
            "machine. Set SECRET_KEY to a long random value."
        )
    SECRET_KEY = _DEV_SECRET_KEY
    if "pytest" not in sys.modules:
        warnings.warn(
            "SECRET_KEY is not set: using the built-in development key (local use only). "
            "Set SECRET_KEY in the environment for any shared or production deployment.",
            stacklevel=1,
        )

CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",  # runserver serves ASGI (HTTP + WebSocket)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "axes",  # sign-in lockout (issue 14, F8)
    "csp",  # Content-Security-Policy (issue 14, item 7)
    "webapp.common",
    "webapp.accounts",
    "webapp.projects",
    "webapp.datasets",
    "webapp.runs",
    "webapp.mlmodels",
    "webapp.predictions",
    "webapp.evaluations",
    "webapp.comparisons",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "webapp.common.headers.PermissionsPolicyMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its lockout page or JSON.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"
ASGI_APPLICATION = "webapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------
_DEFAULT_SQLITE = f"sqlite:///{VAR_DIR / 'voxelsearch.sqlite3'}"
DATABASE_URL = os.environ.get("DATABASE_URL", "") or _DEFAULT_SQLITE
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server, Celery worker and tests share one file: WAL, a busy timeout and immediate
    # write transactions keep concurrent writers from failing with "database is locked".
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth -------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if env_bool("VOXELSEARCH_FAST_PASSWORD_HASHER", False):  # tests only: fast, insecure hashing
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Sign-in lockout (issue 14, F8): AXES_FAILURE_LIMIT failed sign-ins for one username from one
# address (form, token API or admin) block that pair for AXES_COOLOFF_TIME, right password or not.
AUTHENTICATION_BACKENDS = [
    "webapp.accounts.backends.RequestAxesBackend",  # axes' AxesStandaloneBackend, first
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("VOXELSEARCH_SIGNIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("VOXELSEARCH_SIGNIN_LOCKOUT_MINUTES", 15))
# Username and address together: a guesser cannot lock a colleague out from elsewhere, and one
# address cannot try many passwords against one account.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "webapp.accounts.lockout.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # failures are what is counted; successful sign-ins need no table
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "projects:list"
LOGOUT_REDIRECT_URL = "accounts:login"

# --- i18n -------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- static and media -------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# The ASGI app serves static files itself (no CDN, no separate web server needed); set
# SERVE_STATIC=0 when a reverse proxy serves STATIC_ROOT.
SERVE_STATIC = env_bool("SERVE_STATIC", True)

MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Media is never served by URL: previews and files go through access-checked views.
MEDIA_URL = "/media/"

# --- uploads: stream to disk, never into memory ----------------------------------------------
FILE_UPLOAD_HANDLERS = ["webapp.common.uploads.CappedTemporaryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # unused by the temp-file handler; kept small anyway
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # non-file form fields
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("VOXELSEARCH_MAX_UPLOAD_FILES", 2000)
FILE_UPLOAD_TEMP_DIR = os.environ.get("FILE_UPLOAD_TEMP_DIR") or None
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750

MB = 1024 * 1024
VOXELSEARCH = {
    # Largest request body accepted by the upload endpoints.
    "MAX_UPLOAD_BYTES": env_int("VOXELSEARCH_MAX_UPLOAD_MB", 4096) * MB,
    # Largest request body anywhere else (sign-in, JSON API, forms): refused before it is read
    # (webapp.common.bodylimit).
    "MAX_REQUEST_BYTES": env_int("VOXELSEARCH_MAX_REQUEST_MB", 8) * MB,
    # A resumable upload left untouched this long is removed (webapp.common.tus).
    "RESUMABLE_UPLOAD_EXPIRY_HOURS": env_int("VOXELSEARCH_UPLOAD_EXPIRY_HOURS", 24),
    # Archive safety: checked from the archive's directory and again while extracting.
    "MAX_ARCHIVE_UNCOMPRESSED_BYTES": env_int("VOXELSEARCH_MAX_ARCHIVE_UNCOMPRESSED_MB", 16384) * MB,
    "MAX_ARCHIVE_MEMBERS": env_int("VOXELSEARCH_MAX_ARCHIVE_MEMBERS", 5000),
    "MAX_COMPRESSION_RATIO": env_int("VOXELSEARCH_MAX_COMPRESSION_RATIO", 200),
    # Largest volume accepted, in voxels (all channels), read from the NIfTI header.
    "MAX_VOXELS_PER_VOLUME": env_int("VOXELSEARCH_MAX_VOXELS", 512 * 512 * 1024),
    # Largest number of cases in one dataset.
    "MAX_CASES": env_int("VOXELSEARCH_MAX_CASES", 2000),
    # Largest estimated preprocessing memory of one case (image + label), from the headers.
    "MAX_PREPROCESS_BYTES": env_int("VOXELSEARCH_MAX_PREPROCESS_MB", 6144) * MB,
    # Deepest JSON nesting accepted (API bodies, dataset.json, label declarations).
    "MAX_JSON_DEPTH": env_int("VOXELSEARCH_MAX_JSON_DEPTH", 64),
}

# --- Redis, Celery, Channels ------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Optional prefix for every Redis key (Celery and Channels): lets several installations or test
# runs share one Redis database without seeing each other's messages.
REDIS_KEY_PREFIX = os.environ.get("REDIS_KEY_PREFIX", "")

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # With acks late, Redis hands a task that is still unacknowledged after this long to another
    # worker: it must outlast the longest search, or a second worker starts the same job.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_HOURS", 72) * 3600,
}
if REDIS_KEY_PREFIX:
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = REDIS_KEY_PREFIX
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True  # state lives in the database, not in a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("default"), Queue("gpu"))
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_ROUTES = {
    "webapp.datasets.tasks.*": {"queue": "default"},
    # Search, retraining and prediction (issue 4) go to the GPU workers:
    "webapp.runs.tasks.*": {"queue": "gpu"},
    "webapp.models.tasks.*": {"queue": "gpu"},
    "webapp.predictions.tasks.*": {"queue": "gpu"},
    "webapp.evaluations.tasks.*": {"queue": "gpu"},  # test-split evaluation (issue 12)
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # channels-redis waits for messages with a 5 s blocking pop, and redis-py 8 gives up
            # reading after a 5 s socket timeout by default: an idle WebSocket would then die with
            # "Timeout reading" (close code 1011). The socket timeout is kept well above the pop.
            "hosts": [{"address": os.environ.get("CHANNEL_LAYER_URL", REDIS_URL), "socket_timeout": 30}],
            "prefix": f"{REDIS_KEY_PREFIX}asgi",
            "capacity": 1000,
            "expiry": 60,
        },
    }
}

# --- REST framework and OpenAPI ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so anonymous API calls answer 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "webapp.common.parsers.DepthLimitedJSONParser",  # JSON nested > MAX_JSON_DEPTH: 400, not 500
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": None,
    "EXCEPTION_HANDLER": "webapp.common.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "VoxelSearch API",
    "DESCRIPTION": (
        "Projects, members, datasets and cases. Authenticate with a session (the browser) or with "
        "`Authorization: Token <key>` (get a key from POST /api/auth/token/)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- security defaults that do not get in the way of the embedded set-up ----------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Content-Security-Policy (issue 14, item 7). Scripts: this site's files only, no inline code
# and no eval ('wasm-unsafe-eval' lets NiiVue compile its WebAssembly decoders, nothing else).
# Confirmations are data-confirm attributes handled by js/confirm.js (no inline handlers).
# Styles keep 'unsafe-inline': pages colour label swatches with style attributes and the architecture graph sets them from JS; CSS cannot
# run code, and stylesheets still come from this site only. Images, fetches and workers also
# allow blob:/data: (NiiVue and Uppy build previews and volumes in memory).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'wasm-unsafe-eval'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'", "blob:", "data:"],  # 'self' covers the same host's ws:// in browsers
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # axes: lockouts (warnings) are kept; each sign-in's "deleted 0 failed attempts" (info) is not.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
