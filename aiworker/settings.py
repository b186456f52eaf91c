"""Settings, read from the environment (SPEC §12).

With no variable set, the platform runs on its embedded default: SQLite under var/, the
in-memory channel layer, Celery jobs run eagerly in-process, Gitea and Kubernetes off, and the
gitops driver writing to a local bare repository under var/.
"""

import secrets
import socket
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

VAR_DIR = Path(env("AIWORKER_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# "production" refuses to start without SECRET_KEY and turns on the secure-cookie settings.
AIWORKER_ENV = env("AIWORKER_ENV", default="development")
PRODUCTION = AIWORKER_ENV == "production"
DEBUG = env.bool("DEBUG", default=not PRODUCTION)


def _development_secret_key() -> str:
    # Kept under var/ (git-ignored) so sessions survive a restart of the dev server.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env("SECRET_KEY")  # raises ImproperlyConfigured when missing
else:
    SECRET_KEY = env("SECRET_KEY", default="") or _development_secret_key()

# `testserver` is the Django test client's host: development only, never in production.
_LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=_LOCAL_HOSTS if PRODUCTION else [*_LOCAL_HOSTS, "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "axes",
    "projects",
    "tasks",
    "agents",
    "deployments",
    "mcpbridge",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ from daphne in the cluster, where no separate web server sits in front.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its lockout page.
    "axes.middleware.AxesMiddleware",
    # Last, so a view's dropped-database error becomes a 503 (process_exception runs inner-first).
    "aiworker.unavailable.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "aiworker.urls"
WSGI_APPLICATION = "aiworker.wsgi.application"
ASGI_APPLICATION = "aiworker.asgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'aiworker.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts: SQLite has no row locks, so this
    # is what keeps claims and transitions serialised when several threads write at once.
    _db.setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
elif _db["ENGINE"] == "django.db.backends.mysql":
    # READ COMMITTED keeps SKIP LOCKED claims from taking gap locks (fewer deadlocks).
    _db.setdefault("OPTIONS", {}).update(
        {"charset": "utf8mb4", "isolation_level": "read committed"}
    )
    _db.setdefault("TEST", {}).update({"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"})
_db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASE_IS_MYSQL = _db["ENGINE"] == "django.db.backends.mysql"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request otherwise
WHITENOISE_USE_FINDERS = DEBUG  # development serves straight from static/, no collectstatic
if PRODUCTION:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# Per-project roles (projects/roles.py) answer user.has_perm(perm, project) via django-rules.
# django-axes first: a locked-out IP or username is refused before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling (docs/security.md): /login/, the admin login and /api/auth/token/ all call
# authenticate(); after LOGIN_FAILURE_LIMIT failures from one IP address, or for one username
# (unknown ones included), sign-in is refused for LOGIN_LOCKOUT_MINUTES, with a page saying so.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # either one locks
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# People's API tokens (projects/api_tokens.py): how long a new one lasts unless its owner says
# otherwise, and the longest it may last.
API_TOKEN_DAYS = env.int("API_TOKEN_DAYS", default=30)
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", default=365)
# A role every signed-in user has in every project ("" = none: membership decides).
PROJECT_DEFAULT_ROLE = env.str("PROJECT_DEFAULT_ROLE", default="")
if PROJECT_DEFAULT_ROLE not in ("", "viewer", "member", "reviewer", "releaser", "admin"):
    raise ImproperlyConfigured(f"PROJECT_DEFAULT_ROLE={PROJECT_DEFAULT_ROLE!r} is not a role.")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Redis: channel layer; Celery broker -----------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's pool refuses a command beyond 100 connections in flight instead of
                # waiting; 200 boards reconnecting at once (a web process restarted) lost 82 of
                # their joins to MaxConnectionsError. Connections open only as they are needed.
                # No socket timeout (redis-py 8's default is 5 s, exactly channels_redis's 5 s
                # BZPOPMIN, which failed every quiet receive). With any socket timeout redis-py
                # sends each command through asyncio.wait_for, and on Python 3.11 wait_for drops
                # a cancellation that arrives as the write completes (bpo-42130, fixed in 3.12):
                # a cancelled receive then read on for ever (a board socket's or the
                # check_response listener's, ~1 cancel in 300 in a loop). A blocking pop answers
                # within its own 5 s; a dead connection is found by TCP keepalive (~25 s).
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": 1000,
                        "socket_timeout": None,
                        "socket_connect_timeout": 5,
                        "socket_keepalive": True,
                        "socket_keepalive_options": {
                            socket.TCP_KEEPIDLE: 10,
                            socket.TCP_KEEPINTVL: 5,
                            socket.TCP_KEEPCNT: 3,
                        },
                    }
                ],
                "prefix": env("CHANNELS_PREFIX", default="aiworker"),
            },
        }
    }
else:
    # Channels' in-memory layer, sweeping expired entries once a second rather than on every
    # receive (aiworker/channel_layers.py).
    CHANNEL_LAYERS = {"default": {"BACKEND": "aiworker.channel_layers.SweptInMemoryChannelLayer"}}
# The in-memory layer does not cross processes: `make run` gives its worker and beat the web
# server's relay URL, and aiworker.live posts their events there (signed with SECRET_KEY) for
# the web server to send to its boards. Redis needs no relay.
LIVE_EVENTS_FORWARD_URL = "" if REDIS_URL else env("LIVE_EVENTS_FORWARD_URL", default="")

# The broker: Redis when REDIS_URL is set. Without it, `memory://` and eager jobs (a plain
# `manage.py` command or the test suite runs each job in-process), unless the environment names
# a broker: `make run` sets `filesystem://` (kombu's filesystem transport, messages as files
# under var/celery-broker/) so that its Celery worker and beat run beside the web server with
# no Redis. Filesystem rather than kombu's SQLAlchemy transport: no extra dependency, and no
# second SQLite writer polling beside the platform's own SQLite database (SQLite has one writer
# at a time; "database is locked" is the SQLAlchemy transport's known failure on SQLite). What
# it gives up, acceptable on a developer's machine: a worker killed with SIGKILL loses the job
# it was running (the file is gone once read), where Redis delivers it again.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://"
)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-job leaves the message for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A whole worker killed (kill -9, node lost) leaves its unacked job in Redis, handed to another
# worker after this many seconds: longer than any job, far shorter than kombu's default hour.
# kombu 5.7 looks for such jobs every unacked_restore_interval (10 s) but scans only on every
# unacked_restore_throttle-th look (10): a job whose timeout ran out just after a scan could wait
# up to 100 s more (the killed-worker test's 90 s ran out in CI). A look is one ZRANGE: scan on
# each.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
    "unacked_restore_throttle": 1,
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery-broker"
    # One folder is both ends of the queue: the web server and beat write, the worker reads.
    for _folder in ("messages", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "data_folder_in": str(_broker_dir / "messages"),
        "data_folder_out": str(_broker_dir / "messages"),
        "control_folder": str(_broker_dir / "control"),
        # The worker looks for new files this often (kombu's default is 1 s); a short poll
        # also lets the worker see a stop request sooner, so one Ctrl-C ends it cleanly well
        # within honcho's 5 s before it kills.
        "polling_interval": 0.2,
    }
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Periodic jobs; DatabaseScheduler copies these into django-celery-beat's tables on start (and
# updates an entry whose schedule changed). The two watchdogs' intervals follow TASK_LEASE and
# AGENT_OFFLINE_AFTER (set at the end of this file).
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "release-expired-task-leases": {
        "task": "tasks.jobs.release_expired_leases",
        "schedule": 30,
    },
    "mark-stale-agents-offline": {
        "task": "agents.jobs.mark_stale_agents_offline",
        "schedule": 30,
    },
    "reconcile-pull-requests": {
        "task": "tasks.jobs.reconcile_pull_requests",
        "schedule": 300.0,
    },
    "autoscale-agent-pods": {
        "task": "agents.jobs.autoscale_agent_pods",
        "schedule": 60.0,
    },
    "reconcile-local-deployments": {
        "task": "deployments.jobs.reconcile_local_deployments",
        "schedule": 60.0,
    },
    "expire-previews": {
        "task": "deployments.jobs.expire_previews",
        "schedule": 300.0,
    },
    "garbage-collect-deploy-resources": {
        "task": "deployments.jobs.garbage_collect_resources",
        "schedule": 3600.0,
    },
}

# --- Integrations (each switched on by its own variable) --------------------------------------
GITEA_URL = env("GITEA_URL", default="")
GITEA_TOKEN = env("GITEA_TOKEN", default="")
GITEA_TIMEOUT = env.float("GITEA_TIMEOUT", default=10.0)
# Where Gitea reaches this platform: the webhook URL registered on connect is built from it.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

DEPLOY_DRIVER = env("DEPLOY_DRIVER", default="gitops")
GITOPS_REPO_URL = env("GITOPS_REPO_URL", default=str(VAR_DIR / "gitops.git"))
KUBECONFIG = env("KUBECONFIG", default="")
PREVIEW_DOMAIN = env("PREVIEW_DOMAIN", default="preview.localhost")
PREVIEW_TTL = env("PREVIEW_TTL", default="7d")
# A preview's TTL may be extended by at most this many hours at a time, and this many times
# (deployments/services.preview_extend); beyond, the request is refused and nothing changes.
PREVIEW_EXTEND_MAX_HOURS = env.int("PREVIEW_EXTEND_MAX_HOURS", default=720)
PREVIEW_EXTEND_MAX_COUNT = env.int("PREVIEW_EXTEND_MAX_COUNT", default=10)
# Deployments (docs/deployments.md): where the ingress controller runs (the previews'
# NetworkPolicy admits only it), its class, the gitops branch, how long the kubernetes driver
# waits for a rollout, and how old an orphaned resource must be before it is collected.
INGRESS_CONTROLLER_NAMESPACE = env("INGRESS_CONTROLLER_NAMESPACE", default="ingress-nginx")
PREVIEW_INGRESS_CLASS = env("PREVIEW_INGRESS_CLASS", default="nginx")
GITOPS_BRANCH = env("GITOPS_BRANCH", default="main")
DEPLOY_ROLLOUT_TIMEOUT = env.float("DEPLOY_ROLLOUT_TIMEOUT", default=300.0)
# Where Argo CD's Application objects live. Set, the gitops driver reports an environment ready
# only when its Application is Synced at the pushed commit and Healthy (read through the
# Kubernetes API, as the kubernetes driver connects); empty, a commit is all it can know.
GITOPS_ARGOCD_NAMESPACE = env("GITOPS_ARGOCD_NAMESPACE", default="")
DEPLOY_GC_SAFETY_WINDOW = env("DEPLOY_GC_SAFETY_WINDOW", default="1h")
# The local driver (deployments/drivers/local.py): where its environments' worktrees, output
# and state live, and how long a run command has to answer its health URL.
LOCAL_DEPLOY_DIR = Path(env("LOCAL_DEPLOY_DIR", default=str(VAR_DIR / "local-deploys")))
LOCAL_DEPLOY_READY_TIMEOUT = env.float("LOCAL_DEPLOY_READY_TIMEOUT", default=60.0)
# The staging and production deployments' URLs; empty -> derived as
# https://<project-slug>-<environment>.<PREVIEW_DOMAIN>/ (deployments/services.release_url).
STAGING_URL = env("STAGING_URL", default="")
PRODUCTION_URL = env("PRODUCTION_URL", default="")

AGENT_OFFLINE_AFTER = env("AGENT_OFFLINE_AFTER", default="90s")
TASK_LEASE = env("TASK_LEASE", default="10m")
# How many active tasks (in progress, needs input) one agent may hold at once.
AGENT_MAX_ACTIVE = env.int("AGENT_MAX_ACTIVE", default=1)
# Progress lines kept per task: older ones are dropped (a chatty agent cannot grow the page).
TASK_PROGRESS_KEEP = env.int("TASK_PROGRESS_KEEP", default=200)
# Empty: the runner launches the CLI of the agent's kind with its profile (agents/cli_profiles.py).
AGENT_COMMAND = env("AGENT_COMMAND", default="")
# Agent pods (k8s/agent/): off until a namespace is given; then the admin, the API and the
# autoscaler create pods there, whose runner reaches MCP at AGENT_MCP_URL.
AGENT_POD_NAMESPACE = env("AGENT_POD_NAMESPACE", default="")
AGENT_IMAGE = env("AGENT_IMAGE", default="aiworker-agent:latest")
AGENT_MCP_URL = env("AGENT_MCP_URL", default="http://aiworker-mcp:3100/mcp")
AGENT_POD_TEMPLATE = env("AGENT_POD_TEMPLATE", default=str(BASE_DIR / "k8s/agent/pod.yaml"))
AGENT_AUTOSCALE = env.bool("AGENT_AUTOSCALE", default=True)

MCP_PORT = env.int("MCP_PORT", default=3100)
MCP_WORKERS = env.int("MCP_WORKERS", default=1)  # HTTP worker processes of `mcp_server`
# How long `mcp_server` keeps an idle HTTP connection open. Longer than an agent's beat (the
# runner's every 20 s, a CLI's every minute at most), so a beat reuses its connection instead of
# paying a TCP set-up; uvicorn's own default (5 s) closed it between every two beats.
MCP_KEEPALIVE_SECONDS = env.int("MCP_KEEPALIVE_SECONDS", default=75)
MCP_MOUNT_IN_ASGI = env.bool("MCP_MOUNT_IN_ASGI", default=True)
# check_response waits one agent may have open at once in one MCP process (mcpbridge/waiting.py).
MCP_MAX_WAITS_PER_AGENT = env.int("MCP_MAX_WAITS_PER_AGENT", default=4)

# Longest text a surface accepts for a task's title and free-text fields.
TASK_TITLE_MAX = 200
TEXT_FIELD_MAX = 20_000

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # People's API tokens: hashed, expiring, scoped (projects/api_tokens.py).
        "projects.api_tokens.ApiTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # LimitOffsetPagination with a ceiling on `limit` (an unbounded one overflowed the query).
    "DEFAULT_PAGINATION_CLASS": "aiworker.api.Pagination",
    # A JSON API: form and multipart bodies get a clear 415. They dropped JSON-valued fields
    # silently, and daphne answers a multipart body without parts with a bare, empty 400.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "aiworker.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["aiworker.throttles.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"webhook": "600/minute", "token": "1200/minute"},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AiWorker API",
    "DESCRIPTION": "Tasks, agents, deployments and releases of the AiWorker platform.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from drf-spectacular-sidecar, served as static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",  # the default, kept
        "aiworker.api.add_common_error_responses",
    ],
    # One schema name for each choice set used by several serializers.
    "ENUM_NAME_OVERRIDES": {
        "TaskStateEnum": "tasks.states.TaskState",
        "PriorityEnum": "tasks.models.Priority",
        "AgentStatusEnum": "agents.models.AgentStatus",
    },
}

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# Django's database sessions; the lookup each signed-in request makes is SQL built once.
SESSION_ENGINE = "aiworker.sessions"
CSRF_COOKIE_HTTPONLY = False  # the board's JavaScript reads it to send X-CSRFToken
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Trust X-Forwarded-Proto only when a proxy that sets (and strips) it is said to be there.
    if env.bool("TRUSTED_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "aiworker.log_redaction.RedactSecretsFilter"},
        "client_disconnect": {"()": "aiworker.log_disconnects.ClientDisconnectFilter"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The SDK's transport: "Terminating session: None" at INFO after every stateless
        # request; a client's disconnect at ERROR (aiworker/log_disconnects.py). Errors stay.
        "mcp.server.streamable_http": {"level": "WARNING", "filters": ["client_disconnect"]},
    },
}


def parse_duration(text: str) -> timedelta:
    """'90s', '10m', '7d', '2h' or a bare number of seconds."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units:
        return timedelta(seconds=float(text[:-1]) * units[text[-1]])
    return timedelta(seconds=float(text))


TASK_LEASE_DURATION = parse_duration(TASK_LEASE)
AGENT_OFFLINE_DURATION = parse_duration(AGENT_OFFLINE_AFTER)
PREVIEW_TTL_DURATION = parse_duration(PREVIEW_TTL)
DEPLOY_GC_SAFETY_WINDOW_DURATION = parse_duration(DEPLOY_GC_SAFETY_WINDOW)


def watchdog_interval(window: timedelta) -> int:
    """Seconds between two runs of the job that watches `window`: half of it, within 1–30 s.

    Half, so that whatever runs out is acted on within one interval of running out (a 5 s
    lease: checked every 2 s); at most 30 s, so long windows are still watched closely; whole
    seconds, because django-celery-beat stores an interval as an integer.
    """
    return max(1, min(30, int(window.total_seconds() // 2)))


CELERY_BEAT_SCHEDULE["release-expired-task-leases"]["schedule"] = watchdog_interval(
    TASK_LEASE_DURATION
)
CELERY_BEAT_SCHEDULE["mark-stale-agents-offline"]["schedule"] = watchdog_interval(
    AGENT_OFFLINE_DURATION
)
