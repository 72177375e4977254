"""Imagineer settings: one module, every value read from the environment.

Unset variables fall back to embedded defaults (SQLite and a filesystem broker under
``var/``) so that ``make run`` works with nothing installed but Python. A value that is set
but wrong stops start-up with an ImproperlyConfigured that names the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from imagineer.csp import drf_style_attribute_hashes

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))


def _env_str(name: str, default: str = "") -> str:
    return env.str(name, default=default).strip()


def _env_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0), got {raw!r}.")


def _env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}.") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {value}.")
    return value


def _env_list(name: str, default: list[str]) -> list[str]:
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _env_path(name: str, default: Path) -> Path:
    raw = _env_str(name)
    return Path(raw).expanduser().resolve() if raw else default


def _env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    raw = env.str(name, default="").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}.") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {value}.")
    return value


def _env_choice(name: str, default: str, choices: set[str]) -> str:
    value = _env_str(name, default).lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(sorted(choices))}; got {value!r}.")
    return value


# --- core -------------------------------------------------------------------------------

DEBUG = _env_bool("DEBUG", default=True)
SECRET_KEY = _env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "imagineer-development-only-not-secret"  # noqa: S105 - embedded default, DEBUG only
elif not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    # Django only warns (security.W009); a short key signs sessions, password resets and tokens.
    raise ImproperlyConfigured(
        f"SECRET_KEY is {len(SECRET_KEY)} characters; with DEBUG off it must be at least 50 random characters "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", [])

VAR_DIR = _env_path("IMAGINEER_VAR_DIR", BASE_DIR / "var")

INSTALLED_APPS = [
    "imagineer.apps.ImagineerAdminConfig",  # django.contrib.admin with our site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_results",
    "csp",
    "imagineer",
    "albums",
    "generation",
    "labeling",
    "training",
    "cards",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "imagineer.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # PostgreSQL cannot store NUL: refused with a 400 before any view reads the input.
    "imagineer.middleware.RefuseNulMiddleware",
    "accounts.middleware.TokenScopeMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Every view needs sign-in unless marked @login_not_required (sign-in, health; DRF views
    # opt out and answer 401 themselves). Django's, HTMX-aware.
    "accounts.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Work saved while the broker is down: 202 "queued when the broker is back", never 500.
    "imagineer.outbox.DeferredSendMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "imagineer.urls"
WSGI_APPLICATION = "imagineer.wsgi.application"
ASGI_APPLICATION = "imagineer.asgi.application"

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
                "imagineer.context_processors.imagineer",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------

_database_url = _env_str("DATABASE_URL")
if _database_url:
    _scheme = _database_url.split("://", 1)[0].lower()
    if _scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgres:// (or sqlite://) URL; got scheme {_scheme!r}.")
    try:
        DATABASES = {"default": env.db_url_config(_database_url)}
    except (ImproperlyConfigured, ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL we understand: {exc}") from None
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "imagineer.sqlite3",
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth, i18n, static, media ----------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Media is never served by URL prefix: views look files up by id and check permissions.
MEDIA_ROOT = _env_path("MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "/media-not-served-directly/"
LORA_ROOT = _env_path("LORA_ROOT", MEDIA_ROOT / "loras")
FILE_UPLOAD_PERMISSIONS = 0o644
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024

# --- the generator ----------------------------------------------------------------------

# A hub repo id, a local diffusers folder or a single .safetensors checkpoint. Empty: the
# built-in tiny random-weight pipeline under var/ (noise, but every code path runs).
IMAGINEER_MODEL = _env_str("IMAGINEER_MODEL")
IMAGINEER_TINY_MODEL_DIR = _env_path("IMAGINEER_TINY_MODEL_DIR", VAR_DIR / "models" / "tiny-sd15-v2")
IMAGINEER_SD15_CONFIG_DIR = BASE_DIR / "data" / "sd15-config"
# A ControlNet for layout guides: a local diffusers folder or a single .safetensors file. Empty:
# guides steer generation as img2img init images only.
IMAGINEER_CONTROLNET = _env_str("IMAGINEER_CONTROLNET")
if IMAGINEER_CONTROLNET and not Path(IMAGINEER_CONTROLNET).expanduser().exists():
    raise ImproperlyConfigured(f"IMAGINEER_CONTROLNET names {IMAGINEER_CONTROLNET!r}, which does not exist.")
if IMAGINEER_CONTROLNET and not Path(IMAGINEER_CONTROLNET).expanduser().is_dir():
    # diffusers reads a single-file ControlNet only with its config from the model hub, which we
    # never reach at run time; a diffusers folder carries its config.
    raise ImproperlyConfigured(
        f"IMAGINEER_CONTROLNET names the file {IMAGINEER_CONTROLNET!r}; name a diffusers ControlNet folder "
        "(config.json + diffusion_pytorch_model.safetensors) instead. Convert a single file once with "
        "ControlNetModel.from_single_file(..., config=<that model's diffusers config>).save_pretrained(folder)."
    )
IMAGINEER_DEVICE = _env_choice("IMAGINEER_DEVICE", "auto", {"auto", "cuda", "mps", "cpu"})
IMAGINEER_DTYPE = _env_choice("IMAGINEER_DTYPE", "auto", {"auto", "fp16", "bf16", "fp32"})
# Images per pipeline call; 0 = auto (from free GPU memory on CUDA, 4 elsewhere).
IMAGINEER_BATCH_SIZE = _env_int("IMAGINEER_BATCH_SIZE", 0, minimum=0, maximum=64)
# Rows per gpu task: several GPU workers share a run chunk by chunk.
IMAGINEER_CHUNK_SIZE = _env_int("IMAGINEER_CHUNK_SIZE", 8, minimum=1, maximum=256)
# Slicing saves memory on small GPUs and costs time on big ones: off unless asked for.
IMAGINEER_ATTENTION_SLICING = _env_bool("IMAGINEER_ATTENTION_SLICING", False)
IMAGINEER_VAE_SLICING = _env_bool("IMAGINEER_VAE_SLICING", False)
IMAGINEER_SCHEDULER = _env_str("IMAGINEER_SCHEDULER", "dpmsolver++")
# CPU threads for torch in the gpu worker; 0 = torch's default. On a shared CPU, 1 avoids
# OpenMP threads spinning against each other (many times slower under contention).
IMAGINEER_TORCH_THREADS = _env_int("IMAGINEER_TORCH_THREADS", 0, minimum=0, maximum=256)
IMAGINEER_MAX_PROMPT_CHARS = 2000
# Background jobs (imagineer/jobs.py): a running job whose heartbeat is older than this lost
# its worker and may be taken over; a job claimed this many times without finishing fails.
IMAGINEER_JOB_STALE_SECONDS = _env_int("IMAGINEER_JOB_STALE_SECONDS", 120, minimum=5, maximum=86400)
IMAGINEER_JOB_MAX_ATTEMPTS = _env_int("IMAGINEER_JOB_MAX_ATTEMPTS", 3, minimum=1, maximum=100)
# Rows of one batch template (one run makes one image per row).
IMAGINEER_MAX_TEMPLATE_ROWS = _env_int("IMAGINEER_MAX_TEMPLATE_ROWS", 1000, minimum=1, maximum=100_000)

# --- limits on queued work per user (imagineer/limits.py); 0 = no limit ---------------------

IMAGINEER_LIMIT_QUEUED_JOBS = _env_int("IMAGINEER_LIMIT_QUEUED_JOBS", 2000, minimum=0)
IMAGINEER_LIMIT_ACTIVE_RUNS = _env_int("IMAGINEER_LIMIT_ACTIVE_RUNS", 5, minimum=0)
IMAGINEER_LIMIT_ACTIVE_LABELING = _env_int("IMAGINEER_LIMIT_ACTIVE_LABELING", 3, minimum=0)
IMAGINEER_LIMIT_ACTIVE_TRAINING = _env_int("IMAGINEER_LIMIT_ACTIVE_TRAINING", 2, minimum=0)
IMAGINEER_LIMIT_ACTIVE_SCRAPES = _env_int("IMAGINEER_LIMIT_ACTIVE_SCRAPES", 3, minimum=0)
IMAGINEER_LIMITS_EXEMPT_CURATORS = _env_bool("IMAGINEER_LIMITS_EXEMPT_CURATORS", default=True)

# --- scraping ---------------------------------------------------------------------------

# Loopback (127.0.0.0/8, ::1) may be fetched only when this is on: tests and local
# development. Private, link-local, multicast and reserved ranges are always refused.
IMAGINEER_SCRAPE_ALLOW_LOOPBACK = _env_bool("IMAGINEER_SCRAPE_ALLOW_LOOPBACK", default=False)
IMAGINEER_SCRAPE_MAX_BYTES = _env_int("IMAGINEER_SCRAPE_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
IMAGINEER_SCRAPE_MAX_PAGE_BYTES = _env_int("IMAGINEER_SCRAPE_MAX_PAGE_BYTES", 5 * 1024 * 1024, minimum=1024)
IMAGINEER_SCRAPE_MAX_PIXELS = _env_int("IMAGINEER_SCRAPE_MAX_PIXELS", 50_000_000, minimum=1)
IMAGINEER_SCRAPE_HOST_DELAY_MS = _env_int("IMAGINEER_SCRAPE_HOST_DELAY_MS", 1000, minimum=0, maximum=60_000)
IMAGINEER_SCRAPE_CONNECT_TIMEOUT = _env_int("IMAGINEER_SCRAPE_CONNECT_TIMEOUT", 5, minimum=1, maximum=120)
IMAGINEER_SCRAPE_READ_TIMEOUT = _env_int("IMAGINEER_SCRAPE_READ_TIMEOUT", 15, minimum=1, maximum=600)
# A whole response (all its reads) must arrive within this, so a server trickling bytes
# cannot hold a worker.
IMAGINEER_SCRAPE_FETCH_DEADLINE = _env_int("IMAGINEER_SCRAPE_FETCH_DEADLINE", 60, minimum=1, maximum=3600)
IMAGINEER_SCRAPE_USER_AGENT = _env_str(
    "IMAGINEER_SCRAPE_USER_AGENT", "Imagineer/0.1 (reference image collector; honours robots.txt)"
)

# --- training ---------------------------------------------------------------------------

# Defaults of a new training run (the original's `training:` config); each run stores its own.
IMAGINEER_TRAINING_LEARNING_RATE = _env_float("IMAGINEER_TRAINING_LEARNING_RATE", 1e-4, minimum=1e-7, maximum=1e-2)
IMAGINEER_TRAINING_RANK = _env_int("IMAGINEER_TRAINING_RANK", 4, minimum=1, maximum=128)
IMAGINEER_TRAINING_ALPHA = _env_float("IMAGINEER_TRAINING_ALPHA", 8.0, minimum=0.0, maximum=1024.0)
IMAGINEER_TRAINING_DROPOUT = _env_float("IMAGINEER_TRAINING_DROPOUT", 0.1, minimum=0.0, maximum=0.9)
IMAGINEER_TRAINING_MAX_STEPS = _env_int("IMAGINEER_TRAINING_MAX_STEPS", 1000, minimum=1, maximum=100_000)
IMAGINEER_TRAINING_SAVE_EVERY = _env_int("IMAGINEER_TRAINING_SAVE_EVERY", 100, minimum=1, maximum=100_000)
IMAGINEER_TRAINING_RESOLUTION = _env_int("IMAGINEER_TRAINING_RESOLUTION", 512, minimum=64, maximum=1024)
IMAGINEER_TRAINING_BATCH_SIZE = _env_int("IMAGINEER_TRAINING_BATCH_SIZE", 1, minimum=1, maximum=64)
IMAGINEER_TRAINING_GRADIENT_ACCUMULATION = _env_int(
    "IMAGINEER_TRAINING_GRADIENT_ACCUMULATION", 1, minimum=1, maximum=64
)
IMAGINEER_TRAINING_MIXED_PRECISION = _env_bool("IMAGINEER_TRAINING_MIXED_PRECISION", default=True)
# Images larger than this many pixels are refused rather than decoded (decompression bombs).
IMAGINEER_TRAINING_MAX_IMAGE_PIXELS = _env_int("IMAGINEER_TRAINING_MAX_IMAGE_PIXELS", 40_000_000, minimum=4096)

# --- labeling ---------------------------------------------------------------------------

# claude-docker: Claude Code CLI in one ephemeral container per image (the Docker engine is
# found through DOCKER_HOST, as the docker CLI finds it); claude-cli: the CLI on this host;
# local: offline detector + pixel statistics, no account needed.
IMAGINEER_LABELER = _env_choice("IMAGINEER_LABELER", "local", {"claude-docker", "claude-cli", "local"})
IMAGINEER_CLAUDE_BIN = _env_str("IMAGINEER_CLAUDE_BIN", "claude")
IMAGINEER_CLAUDE_IMAGE = _env_str("IMAGINEER_CLAUDE_IMAGE", "imagineer-claude-cli:latest")
IMAGINEER_CLAUDE_CREDENTIALS = _env_path(
    "IMAGINEER_CLAUDE_CREDENTIALS", Path("~/.claude/.credentials.json").expanduser()
)
# The CLI must reach Anthropic, so production containers use the engine's default network;
# tests run with "none".
IMAGINEER_CLAUDE_NETWORK = _env_str("IMAGINEER_CLAUDE_NETWORK", "bridge")
IMAGINEER_LABEL_TIMEOUT = _env_int("IMAGINEER_LABEL_TIMEOUT", 120, minimum=1, maximum=3600)
IMAGINEER_LABEL_MEMORY_MB = _env_int("IMAGINEER_LABEL_MEMORY_MB", 1024, minimum=32, maximum=65536)
IMAGINEER_LABEL_PIDS_LIMIT = _env_int("IMAGINEER_LABEL_PIDS_LIMIT", 256, minimum=8, maximum=32768)
# Transient failures (timeout, rate limit, engine not answering) are retried this many times,
# waiting BACKOFF * 2**attempt seconds (plus jitter) in between.
IMAGINEER_LABEL_MAX_RETRIES = _env_int("IMAGINEER_LABEL_MAX_RETRIES", 3, minimum=0, maximum=20)
IMAGINEER_LABEL_RETRY_BACKOFF = _env_int("IMAGINEER_LABEL_RETRY_BACKOFF", 15, minimum=1, maximum=3600)

# --- celery -----------------------------------------------------------------------------

REDIS_URL = _env_str("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://; got {REDIS_URL!r}.")
CELERY_VISIBILITY_TIMEOUT = _env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1, maximum=86400)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
else:
    _broker_dir = VAR_DIR / "celery"
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_TIME_LIMIT = _env_int("CELERY_TASK_TIME_LIMIT", 4 * 3600, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60 if CELERY_TASK_TIME_LIMIT > 120 else None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "generation.tasks.*": {"queue": "gpu"},
    "training.tasks.*": {"queue": "gpu"},
    "cards.tasks.gpu_run": {"queue": "gpu"},
    "labeling.tasks.*": {"queue": "labeling"},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The reconciler (imagineer/reconcile.py) repairs background work every this many seconds;
# `celery -A imagineer beat` sends it to the default queue. Rows whose message is not in the
# broker for IMAGINEER_RECONCILE_LOST_SECONDS are sent again; temporary and orphan files
# older than IMAGINEER_TMP_STALE_SECONDS are removed (every IMAGINEER_MEDIA_SWEEP_SECONDS).
IMAGINEER_RECONCILE_SECONDS = _env_float("IMAGINEER_RECONCILE_SECONDS", 10.0, minimum=0.5, maximum=3600)
IMAGINEER_RECONCILE_LOST_SECONDS = _env_float("IMAGINEER_RECONCILE_LOST_SECONDS", 30.0, minimum=0.5, maximum=86400)
IMAGINEER_TMP_STALE_SECONDS = _env_float("IMAGINEER_TMP_STALE_SECONDS", 3600.0, minimum=0.5, maximum=30 * 86400)
IMAGINEER_MEDIA_SWEEP_SECONDS = _env_float("IMAGINEER_MEDIA_SWEEP_SECONDS", 600.0, minimum=0.5, maximum=86400)
CELERY_BEAT_SCHEDULE = {
    "reconcile": {
        "task": "imagineer.tasks.reconcile",
        "schedule": IMAGINEER_RECONCILE_SECONDS,
        # A pass that waited longer than one interval is superseded by the next one.
        "options": {"queue": "default", "expires": IMAGINEER_RECONCILE_SECONDS},
    },
}

# --- REST framework ---------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["imagineer.permissions.RolePermission"],
    "DEFAULT_PAGINATION_CLASS": "imagineer.api_pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "imagineer.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "imagineer.api_common.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Imagineer API",
    "DESCRIPTION": "Themed image collections with Stable Diffusion 1.5 and LoRAs. "
    "Authenticate with a session (browser) or `Authorization: Token <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api",
    # Like every page but sign-in and health, the schema and its viewers need a signed-in user.
    "SERVE_PERMISSIONS": ["imagineer.permissions.RolePermission"],
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "generation.models.GenerationJob.Status",
        "RunStatusEnum": "generation.models.BatchGenerationRun.Status",
        "TrainingStatusEnum": "training.models.TrainingRun.Status",
        # A design's index and title fonts share one choice set.
        "CardFontEnum": "cards.render.fonts.FONT_CHOICES",
    },
}

# --- logging ----------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _env_str("LOG_LEVEL", "INFO").upper()},
}

# --- accounts (used by the accounts work) -----------------------------------------------

GOOGLE_CLIENT_ID = _env_str("GOOGLE_CLIENT_ID")
GOOGLE_CLIENT_SECRET = _env_str("GOOGLE_CLIENT_SECRET")
if bool(GOOGLE_CLIENT_ID) != bool(GOOGLE_CLIENT_SECRET):
    raise ImproperlyConfigured("Set both GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET for Google sign-in, or neither.")
# Who may join: addresses and/or domains (comma-separated). Both empty: anyone Google or the
# sign-up form admits.
IMAGINEER_ALLOWED_EMAIL_DOMAINS = _env_list("IMAGINEER_ALLOWED_EMAIL_DOMAINS", [])
IMAGINEER_ALLOWED_EMAILS = _env_list("IMAGINEER_ALLOWED_EMAILS", [])
IMAGINEER_DEFAULT_ROLE = _env_choice("IMAGINEER_DEFAULT_ROLE", "viewer", {"viewer", "creator", "curator"})
IMAGINEER_LOCAL_SIGNUP = _env_bool("IMAGINEER_LOCAL_SIGNUP", default=True)
# Anonymous visitors may browse albums marked public.
IMAGINEER_PUBLIC_ALBUMS = _env_bool("IMAGINEER_PUBLIC_ALBUMS", default=False)

ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
ACCOUNT_FORMS = {"signup": "accounts.forms.SignupForm", "add_email": "accounts.forms.AddEmailForm"}
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# With an allow-list a local sign-up must prove it owns the listed address.
ACCOUNT_EMAIL_VERIFICATION = _env_choice(
    "IMAGINEER_EMAIL_VERIFICATION",
    "mandatory" if IMAGINEER_ALLOWED_EMAIL_DOMAINS or IMAGINEER_ALLOWED_EMAILS else "optional",
    {"mandatory", "optional", "none"},
)
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Imagineer] "
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
# Failed sign-ins per account: after this many, attempts from browsers that never signed in to
# the account wait 2**(failures - this) seconds, at most IMAGINEER_LOGIN_DELAY_MAX; the right
# password is never refused for good, so nobody can lock an owner out (accounts/signin.py).
IMAGINEER_LOGIN_FAILURES_PER_ACCOUNT = _env_int("IMAGINEER_LOGIN_FAILURES_PER_ACCOUNT", 5, minimum=1)
IMAGINEER_LOGIN_DELAY_MAX = _env_int("IMAGINEER_LOGIN_DELAY_MAX", 60, minimum=1, maximum=3600)
ACCOUNT_RATE_LIMITS = {
    # Failed sign-ins per client address (per account: IMAGINEER_LOGIN_FAILURES_PER_ACCOUNT).
    "login_failed": "10/m/ip",
    "login": "30/m/ip",
    "signup": "20/m/ip",
}
# Google verifies addresses: a Google sign-in with the address of an existing account signs
# into that account and links Google to it.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False  # the sign-in page POSTs (with CSRF) to start the Google flow
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        "SCOPE": ["openid", "profile", "email"],
        "AUTH_PARAMS": {"access_type": "online", "prompt": "select_account"},
        "OAUTH_PKCE_ENABLED": True,
        "EMAIL_AUTHENTICATION": True,
    }
}
if GOOGLE_CLIENT_ID:
    SOCIALACCOUNT_PROVIDERS["google"]["APPS"] = [
        {"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}
    ]

EMAIL_BACKEND = _env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = _env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = _env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = _env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = _env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = _env_str("DEFAULT_FROM_EMAIL", "imagineer@localhost")

# Rate limits count in the cache: shared across processes when Redis is there.
if REDIS_URL:
    CACHES = {
        "default": {
            # Degrades to "no cache" while Redis is down (imagineer/cache.py): sign-in and
            # pages keep working, rate limits stop counting; /api/health reports it.
            "BACKEND": "imagineer.cache.DegradingRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "imagineer",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }

# --- security ---------------------------------------------------------------------------

# Served over HTTPS (the default without DEBUG): secure cookies, HSTS, redirect to https.
IMAGINEER_HTTPS = _env_bool("IMAGINEER_HTTPS", default=not DEBUG)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
if IMAGINEER_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = _env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^api/health$", r"^health$"]
# Content-Security-Policy (django-csp; imagineer/csp.py says why each source is there): this
# server only, no inline script, inline <style> only with the response's nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-attr": ["'unsafe-hashes'", *drf_style_attribute_hashes()],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "worker-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        # Google sign-in POSTs here and is redirected to Google's consent page.
        "form-action": [SELF, *(["https://accounts.google.com"] if GOOGLE_CLIENT_ID else [])],
        "report-uri": "/csp-report",
    }
}

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if _env_bool("IMAGINEER_TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
